"""Staff actions on workflows, the caseload, and the provider's to-dos."""

from functools import partial

from django.contrib import messages
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_POST

from clients.forms import DelegateForm
from clients.models import Client, Profile
from clients.selectors import clients_visible_to, get_client_for
from portal.access import firm_member_required, get_for_firm, member_required
from portal.feedback import attempt, form_errors
from portal.models import Membership, Role

from . import credentials, services
from .casefile import client_files
from .forms import (
    CaseloadFilterForm,
    ChangeStateForm,
    DatedActionForm,
    DevelopmentForm,
    EnrollmentForm,
    EnrollmentUpdateForm,
    GrantForm,
    OutcomeForm,
    ReasonForm,
    RoundForm,
)
from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    Holder,
    SignatureRound,
    Signer,
)
from .selectors import (
    CASELOAD_SORTS,
    SORT_CHOICES,
    STAGES,
    caseload,
    parse_sort,
)
from .todos import party_for, todos_for


def _back_to_client(client_public_id):
    return redirect("client_detail", public_id=client_public_id)


# --- caseload (the staff dashboard) ---------------------------------------------------


def caseload_page(request):
    membership = request.membership
    form = CaseloadFilterForm(request)
    filters = form.caseload_filters(is_admin=membership.is_admin)
    page = caseload(membership=membership, filters=filters, page=form.page_number)
    if page.number < form.page_number:
        messages.info(
            request,
            f"There {'is' if page.number == 1 else 'are'} only {page.number} "
            f"page{pluralize(page.number)} of clients: this is the last.",
        )
    staff = []
    if membership.is_admin:
        staff = list(
            Membership.objects.firm_staff(request.firm)
            .select_related("user")
            .order_by("user__full_name")
        )
    # Links keep the filters across pages and sorts, and the sort across pages (a new sort
    # starts at page 1): the values as understood, so a junk one is said once, not on every
    # page.
    unsorted = _filter_query(filters)
    kept = unsorted.copy()
    if filters.sort != "urgency":
        kept["sort"] = filters.sort
    sort_key, descending = parse_sort(filters.sort)
    return render(
        request,
        "workflows/caseload.html",
        {
            "cases": page.object_list,
            "filters": filters,
            "stages": STAGES,
            "holders": Holder.choices,
            "sorts": SORT_CHOICES,
            "sort_words": CASELOAD_SORTS[sort_key][descending],
            "columns": _sort_columns(unsorted, sort_key, descending),
            "staff": staff,
            "page_obj": page,
            "page_range": list(page.paginator.get_elided_page_range(page.number, on_each_side=1)),
            "page_link": "?" + (kept.urlencode() + "&" if kept else ""),
            "total": page.paginator.count,
            # "Clear" drops the filters, not the order.
            "clear_link": reverse("dashboard")
            + (f"?sort={filters.sort}" if filters.sort != "urgency" else ""),
        },
    )


def _filter_query(filters) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, value in [
        ("q", filters.q),
        ("assignee", filters.assignee),
        ("stage", filters.stage),
        ("holder", filters.holder),
        ("due_within", filters.due_within),
        ("overdue", "1" if filters.overdue else ""),
    ]:
        if value not in ("", None):
            query[name] = value
    return query


# The caseload's sortable columns: (header, sort key); "Open work" sorts by urgency.
SORT_COLUMNS = [
    ("Client", "name"),
    ("Open work", "urgency"),
    ("Next deadline", "deadline"),
    ("Last activity", "activity"),
]


def _sort_columns(params, sort_key: str, descending: bool) -> dict[str, dict]:
    """Each sortable header's link (the other way round if it is the current sort) and its
    aria-sort."""
    columns = {}
    for label, key in SORT_COLUMNS:
        current = key == sort_key
        ascending_next = not (current and not descending)
        query = params.copy()
        query["sort"] = key if ascending_next else f"-{key}"
        columns[key] = {
            "label": label,
            "href": "?" + query.urlencode(),
            "aria_sort": ("descending" if descending else "ascending") if current else "",
        }
    return columns


# --- staff actions --------------------------------------------------------------------

GRANT_ACTIONS = {
    "mark-active": (services.grant_mark_active, "Access marked active."),
    "not-yet": (services.grant_not_yet_done, "Sent back to the provider."),
    "record-expired": (services.grant_record_expired, "Recorded as expired."),
    "record-rejected": (services.grant_record_rejected, "Recorded as rejected."),
    "send-again": (services.grant_send_again, "A new request was sent."),
    "cancel": (services.grant_cancel, "Access grant cancelled."),
}
ROUND_ACTIONS = {
    "confirm": (services.round_confirm, "Signature confirmed; the application is submitted."),
    "not-yet": (services.round_not_yet_signed, "Sent back to the provider."),
    "mailed": (services.round_mark_mailed, "Paper signature recorded as mailed."),
    "received": (services.round_mark_received, "Paper signature received; submitted."),
    "cancel": (services.round_cancel, "Signature round cancelled."),
}
TAKES_REASON = {
    services.grant_not_yet_done,
    services.grant_record_rejected,
    services.grant_cancel,
    services.round_not_yet_signed,
    services.round_cancel,
}


def _run_action(request, actions: dict, action: str, **target):
    if action not in actions:
        raise Http404("No such action.")
    function, success = actions[action]
    kwargs = dict(target, actor=request.user)
    if function in TAKES_REASON:
        form = ReasonForm(request.POST)
        kwargs["reason"] = form.data.get("reason", "")[:300]
    attempt(request, lambda: function(**kwargs), success)


@firm_member_required
@require_POST
def grant_action(request, public_id, action):
    grant = get_for_firm(
        AccessGrant.objects.select_related("profile__client"), request.firm, public_id=public_id
    )
    _run_action(request, GRANT_ACTIONS, action, grant=grant)
    return _back_to_client(grant.profile.client.public_id)


@firm_member_required
@require_POST
def signer_confirm(request, public_id):
    signer = get_for_firm(
        Signer.objects.select_related("signature_round__enrollment__profile__client"),
        request.firm,
        public_id=public_id,
    )
    attempt(
        request,
        lambda: services.signer_confirm(signer=signer, actor=request.user),
        f"{signer.name}'s signature confirmed.",
    )
    return _back_to_client(signer.signature_round.enrollment.profile.client.public_id)


@firm_member_required
@require_POST
def round_action(request, public_id, action):
    signature_round = get_for_firm(
        SignatureRound.objects.select_related("enrollment__profile__client"),
        request.firm,
        public_id=public_id,
    )
    _run_action(request, ROUND_ACTIONS, action, signature_round=signature_round)
    return _back_to_client(signature_round.enrollment.profile.client.public_id)


@firm_member_required
@require_POST
def grant_create(request, public_id):
    profile = get_for_firm(
        Profile.objects.select_related("client"), request.firm, public_id=public_id
    )
    form = GrantForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        attempt(
            request,
            lambda: services.grant_create(
                profile=profile,
                method=data["method"],
                requested_role=data["requested_role"],
                pecos=data["pecos"],
                nppes=data["nppes"],
                sent_on=data["sent_on"],
                actor=request.user,
            ),
            f"Access request for {profile.label} sent; the provider has been told.",
        )
    else:
        form_errors(request, form)
    return _back_to_client(profile.client.public_id)


@firm_member_required
@require_POST
def enrollment_create(request, public_id):
    profile = get_for_firm(
        Profile.objects.select_related("client"), request.firm, public_id=public_id
    )
    form = EnrollmentForm(request.POST)
    if form.is_valid():
        attempt(
            request,
            lambda: services.enrollment_create(
                profile=profile, kind=form.cleaned_data["kind"], actor=request.user
            ),
            f"Enrollment started for {profile.label}.",
        )
    else:
        form_errors(request, form)
    return _back_to_client(profile.client.public_id)


def _get_enrollment(request, public_id) -> Enrollment:
    return get_for_firm(
        Enrollment.objects.select_related("profile__client"), request.firm, public_id=public_id
    )


@firm_member_required
@require_POST
def round_create(request, public_id):
    enrollment = _get_enrollment(request, public_id)
    form = RoundForm(request.POST, client=enrollment.profile.client)
    if form.is_valid():
        data = form.cleaned_data
        common = {
            "enrollment": enrollment,
            "method": data["method"],
            "submitted_on": data["submitted_on"],
            "official": data["official"],
            "provider_pecos_email": data["provider_pecos_email"],
        }
        if enrollment.state == Enrollment.State.PREPARING:
            action = partial(services.round_open, **common)
        else:
            action = partial(services.round_open_revision, reason=data["reason"], **common)
        attempt(
            request,
            partial(action, actor=request.user),
            "Signature round opened; the provider has been told.",
        )
    else:
        form_errors(request, form)
    return _back_to_client(enrollment.profile.client.public_id)


@firm_member_required
@require_POST
def enrollment_change_state(request, public_id):
    enrollment = _get_enrollment(request, public_id)
    form = ChangeStateForm(request.POST)
    if form.is_valid():
        to = form.cleaned_data["state"]
        attempt(
            request,
            lambda: services.enrollment_change_state(
                enrollment=enrollment, to=to, reason=form.cleaned_data["reason"], actor=request.user
            ),
            f"Enrollment is now {Enrollment.State(to).label.lower()}.",
        )
    else:
        form_errors(request, form)
    return _back_to_client(enrollment.profile.client.public_id)


@firm_member_required
@require_POST
def enrollment_update(request, public_id):
    enrollment = _get_enrollment(request, public_id)
    form = EnrollmentUpdateForm(request.POST, firm=request.firm)
    if form.is_valid():
        data = form.cleaned_data
        attempt(
            request,
            lambda: services.enrollment_update(
                enrollment=enrollment,
                actor=request.user,
                holder=data["holder"],
                holder_reason=data["holder_reason"],
                follow_up_on=data["follow_up_on"],
                tracking_number=data["tracking_number"],
                assigned_staff=data["assigned_staff"],
            ),
            "Enrollment updated.",
        )
    else:
        form_errors(request, form)
    return _back_to_client(enrollment.profile.client.public_id)


@firm_member_required
@require_POST
def enrollment_outcome(request, public_id):
    enrollment = _get_enrollment(request, public_id)
    form = OutcomeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        outcome = data["outcome"]
        attempt(
            request,
            lambda: services.enrollment_record_outcome(
                enrollment=enrollment,
                outcome=outcome,
                decided_on=data["decided_on"],
                reason=data["reason"],
                effective_date=data["effective_date"],
                reconsider_by=data["reconsider_by"],
                actor=request.user,
            ),
            f"Outcome recorded: {Enrollment.State(outcome).label.lower()}.",
        )
    else:
        form_errors(request, form)
    return _back_to_client(enrollment.profile.client.public_id)


RECONSIDERATION_ACTIONS = {
    "filed": (
        lambda enrollment, data, actor: services.reconsideration_record_filed(
            enrollment=enrollment, filed_on=data["on"], actor=actor
        ),
        "Reconsideration recorded as filed; the window's clock has stopped.",
    ),
    "declined": (
        lambda enrollment, data, actor: services.reconsideration_decline(
            enrollment=enrollment, reason=data["reason"], actor=actor
        ),
        "Recorded: reconsideration not requested.",
    ),
    "upheld": (
        lambda enrollment, data, actor: services.reconsideration_record_decision(
            enrollment=enrollment,
            reversed_=False,
            decided_on=data["on"],
            reason=data["reason"],
            actor=actor,
        ),
        "Recorded: the denial was upheld.",
    ),
    "reversed": (
        lambda enrollment, data, actor: services.reconsideration_record_decision(
            enrollment=enrollment,
            reversed_=True,
            decided_on=data["on"],
            effective_date=data["effective_date"],
            reason=data["reason"],
            actor=actor,
        ),
        "Recorded: the denial was reversed and the enrollment approved.",
    ),
}


def _run_form_action(request, actions: dict, action: str, target, form_class) -> None:
    """Run `actions[action]` on `target` with the posted form's values; a bad form is its
    own message and changes nothing."""
    if action not in actions:
        raise Http404("No such action.")
    form = form_class(request.POST)
    if form.is_valid():
        run, success = actions[action]
        attempt(request, lambda: run(target, form.cleaned_data, request.user), success)
    else:
        form_errors(request, form)


@firm_member_required
@require_POST
def reconsideration_action(request, public_id, action):
    enrollment = _get_enrollment(request, public_id)
    _run_form_action(request, RECONSIDERATION_ACTIONS, action, enrollment, DatedActionForm)
    return _back_to_client(enrollment.profile.client.public_id)


@firm_member_required
@require_POST
def development_create(request, public_id):
    enrollment = _get_enrollment(request, public_id)
    form = DevelopmentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        attempt(
            request,
            lambda: services.development_open(
                enrollment=enrollment,
                asked=data["asked"],
                holder=data["holder"],
                letter_on=data["letter_on"],
                due_on=data["due_on"],
                actor=request.user,
            ),
            "Development request recorded."
            + (" The provider has been told." if data["holder"] == Holder.PROVIDER else ""),
        )
    else:
        form_errors(request, form)
    return _back_to_client(enrollment.profile.client.public_id)


DEVELOPMENT_ACTIONS = {
    "answered": (
        lambda request, data, actor: services.development_record_answered(
            request=request, responded_on=data["on"], actor=actor
        ),
        "Response recorded; the clock has stopped.",
    ),
    "not-yet": (
        lambda request, data, actor: services.development_not_yet_done(
            request=request, reason=data["reason"], actor=actor
        ),
        "Sent back to the provider.",
    ),
    "cancel": (
        lambda request, data, actor: services.development_cancel(
            request=request, reason=data["reason"], actor=actor
        ),
        "Development request cancelled.",
    ),
}


@firm_member_required
@require_POST
def development_action(request, public_id, action):
    development = get_for_firm(
        DevelopmentRequest.objects.select_related("enrollment__profile__client"),
        request.firm,
        public_id=public_id,
    )
    _run_form_action(request, DEVELOPMENT_ACTIONS, action, development, DatedActionForm)
    return _back_to_client(development.enrollment.profile.client.public_id)


# --- the provider's side --------------------------------------------------------------


def todos_page(request):
    """What the provider (or a delegate) has to do, for each client they act for."""
    cases = client_files(
        Client.objects.select_related("firm", "assigned_staff").filter(
            pk__in=clients_visible_to(request.membership).values("pk")
        )
    )
    sections = []
    for case in cases:
        client = case.client
        party = party_for(request.user, client)
        todos = todos_for(case, party)
        sections.append(
            {
                "client": client,
                "case": case,
                "party": party,
                "todos": [todo for todo in todos if not todo.claimed],
                "waiting": [todo for todo in todos if todo.claimed],
                # The provider manages who at their office may act for them.
                "delegate_form": (
                    DelegateForm(
                        profiles=[p.profile for p in case.profiles], auto_id=f"c{client.pk}_%s"
                    )
                    if party is not None and party.is_provider
                    else None
                ),
            }
        )
    return render(request, "workflows/todos.html", {"sections": sections})


# What "I've done this" reports, by kind: the step, where it hangs, and the service.
DONE_KINDS = {
    "grant": (
        AccessGrant.objects.select_related("profile__client"),
        "profile__client",
        lambda step, party, actor: services.grant_claim_done(grant=step, party=party, actor=actor),
    ),
    "signer": (
        Signer.objects.select_related("official", "signature_round__enrollment__profile__client"),
        "signature_round__enrollment__profile__client",
        lambda step, party, actor: services.signer_claim_signed(
            signer=step, party=party, actor=actor
        ),
    ),
    "ia-regain": (
        Client.objects.all(),
        "",
        lambda client, party, actor: services.ia_regain_claim(
            client=client, party=party, actor=actor
        ),
    ),
    "ia-password": (
        Client.objects.all(),
        "",
        lambda client, party, actor: services.ia_password_reset_done(
            client=client, party=party, actor=actor
        ),
    ),
    "development": (
        DevelopmentRequest.objects.select_related("enrollment__profile__client"),
        "enrollment__profile__client",
        lambda step, party, actor: services.development_claim_done(
            request=step, party=party, actor=actor
        ),
    ),
    # A CAQH re-attestation (a document is uploaded instead: credential_views.todo_upload).
    "credential": (
        Credential.objects.select_related("kind", "profile__client"),
        "profile__client",
        lambda step, party, actor: credentials.credential_claim_attested(
            credential=step, party=party, actor=actor
        ),
    ),
}


# "Undo" within minutes of "I've done this", by kind: the service that takes it back.
UNDO_KINDS = {
    "grant": lambda step, party, actor: services.grant_undo_claim(
        grant=step, party=party, actor=actor
    ),
    "signer": lambda step, party, actor: services.signer_undo_claim(
        signer=step, party=party, actor=actor
    ),
    "development": lambda step, party, actor: services.development_undo_claim(
        request=step, party=party, actor=actor
    ),
}


def _claimed_step(request, kind, public_id):
    """The step of `kind` and who acts on it as the logged-in person, or 404."""
    if kind not in DONE_KINDS:
        raise Http404("No such step.")
    queryset, client_path, _claim = DONE_KINDS[kind]
    step = queryset.filter(firm=request.firm, public_id=public_id).first()
    if step is None:
        raise Http404("No such step.")
    owner = step
    for name in filter(None, client_path.split("__")):
        owner = getattr(owner, name)
    client = get_client_for(
        request, owner.public_id, Client.objects.prefetch_related("delegates__roles")
    )
    party = party_for(request.user, client)
    if party is None:
        raise Http404("No such step.")
    return step, party


@member_required(Role.CLIENT)
@require_POST
def todo_undo(request, kind, public_id):
    """Take back "I've done this" pressed by mistake (within minutes)."""
    if kind not in UNDO_KINDS:
        raise Http404("No such step.")
    step, party = _claimed_step(request, kind, public_id)
    attempt(
        request,
        partial(UNDO_KINDS[kind], step, party, request.user),
        "Undone: it is back on your to-do list.",
    )
    return redirect("dashboard")


@member_required(Role.CLIENT)
@require_POST
def todo_firm_not_found(request, public_id):
    """ "I can't find you" on an add-surrogate to-do: staff send a request instead."""
    grant, party = _claimed_step(request, "grant", public_id)
    attempt(
        request,
        lambda: services.grant_firm_not_found(grant=grant, party=party, actor=request.user),
        "Thank you: we will send you a request to approve instead.",
    )
    return redirect("dashboard")


@member_required(Role.CLIENT)
@require_POST
def todo_done(request, kind, public_id):
    """ "I've done this": record the claim; staff verify it next."""
    step, party = _claimed_step(request, kind, public_id)
    _queryset, _path, claim = DONE_KINDS[kind]
    attempt(
        request,
        partial(claim, step, party, request.user),
        "Thank you. We'll check it and let you know if anything is missing. "
        "Pressed it by mistake? You can undo it for 10 minutes below.",
    )
    return redirect("dashboard")
