"""Client pages for firm staff: create, edit, the client page and its forms, import."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from notifications.selectors import bouncing_among
from portal import audit
from portal.access import admin_required, firm_member_required, get_for_firm, member_required
from portal.feedback import attempt, form_errors
from portal.models import AuditEvent
from workflows import timeline
from workflows.casefile import client_file
from workflows.credential_views import credential_forms
from workflows.forms import (
    ChangeStateForm,
    EnrollmentForm,
    GrantForm,
    ReasonForm,
    RoundForm,
)
from workflows.todos import todos_for

from . import importing, services
from .forms import (
    ClientForm,
    ClientIAForm,
    DelegateForm,
    ImportForm,
    OfficialForm,
    OrganizationForm,
    TimelineFilterForm,
    staff_members,
)
from .models import Client, Delegate, IAController, Official, Organization
from .selectors import get_client_for

TIMELINE_LENGTH = 100
IMPORT_SESSION_KEY = "clients.import"


@firm_member_required
def client_new(request):
    form = ClientForm(request.POST or None, firm=request.firm)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        done = attempt(
            request,
            lambda: services.client_create(
                firm=request.firm,
                actor=request.user,
                assigned_staff=data.pop("assigned_staff"),
                **data,
            ),
            form=form,
        )
        if done:
            messages.success(request, f"{done.result.display_name} added.")
            return redirect("client_detail", public_id=done.result.public_id)
    return render(request, "clients/client_form.html", {"form": form, "client": None})


@firm_member_required
def client_edit(request, public_id):
    client = get_client_for(request, public_id)
    form = ClientForm(request.POST or None, instance=client, firm=request.firm)
    if request.method == "POST" and form.is_valid():
        done = attempt(
            request,
            lambda: services.client_update(client=client, actor=request.user, **form.cleaned_data),
            "Client saved.",
            form=form,
        )
        if done:
            return redirect("client_detail", public_id=client.public_id)
    return render(request, "clients/client_form.html", {"form": form, "client": client})


@admin_required
def client_access_log(request, public_id):
    """The firm admin's view of who opened this client's record, newest first."""
    client = get_client_for(request, public_id)
    audit.record_read("client.access_log_viewed", request, client)
    reads = list(
        AuditEvent.objects.filter(
            firm=request.firm,
            target_type=client._meta.label_lower,
            target_id=str(client.public_id),
            verb__in=list(audit.READ_VERBS),
        )
        .select_related("actor")
        .order_by("-created_at", "-id")[:ACCESS_LOG_LENGTH]
    )
    for event in reads:
        event.what = audit.READ_VERBS[event.verb]
    return render(
        request,
        "clients/access_log.html",
        {"client": client, "reads": reads, "limit": ACCESS_LOG_LENGTH},
    )


ACCESS_LOG_LENGTH = 500


@member_required()
def client_detail(request, public_id):
    """Staff: the whole client. Providers and delegates: redirected to their to-dos."""
    if not request.membership.works_for_firm:
        get_client_for(request, public_id)
        return redirect("dashboard")
    client = get_client_for(
        request, public_id, Client.objects.select_related("firm", "assigned_staff", "user")
    )
    audit.record_read("client.viewed", request, client)
    case = client_file(client, history=True)
    profiles = [profile_file.profile for profile_file in case.profiles]
    shown_profile = TimelineFilterForm(request, profiles=profiles).filters()["profile"]
    events = AuditEvent.objects.filter(firm=request.firm, client_uuid=client.public_id)
    if shown_profile:
        profile_file = next(p for p in case.profiles if str(p.profile.public_id) == shown_profile)
        events = events.filter(target_id__in=timeline.profile_target_ids(profile_file))
    events = list(events.select_related("actor").order_by("-created_at", "-id")[:TIMELINE_LENGTH])
    return render(
        request,
        "clients/client_detail.html",
        {
            "client": client,
            "case": case,
            "bouncing": bouncing_among(request.firm, _addresses_shown(case)),
            "shown_profile": shown_profile,
            "timeline_days": timeline.by_day(events, request.firm.zone),
            "todos": todos_for(case, None, about=True),
            "credentials": case.credential_rows(),
            "credential_forms": credential_forms(client, profiles),
            "grant_form": GrantForm(),
            "enrollment_form": EnrollmentForm(),
            "round_form": RoundForm(),
            "official_form": OfficialForm(client=client),
            "ia_choices": IAController.choices,
            "reason_form": ReasonForm(),
            "state_form": ChangeStateForm(),
            "organization_form": OrganizationForm(),
            "delegate_form": DelegateForm(profiles=profiles),
            "staff_options": [
                (str(user.public_id), user.display_name) for user in staff_members(request.firm)
            ],
        },
    )


def _addresses_shown(case) -> list[str]:
    """Every address the client page shows (from its case file): the provider's, the
    delegates', the officials' and the signers'."""
    return [
        case.client.email,
        *(delegate.email for delegate in case.delegates),
        *(official.email for official in case.officials),
        *(
            signer.signer.pecos_email
            for profile_file in case.profiles
            for enrollment_file in profile_file.enrollments
            for round_step in enrollment_file.rounds
            for signer in round_step.signers
        ),
    ]


@firm_member_required
@require_POST
def organization_add(request, public_id):
    client = get_client_for(request, public_id)
    form = OrganizationForm(request.POST)
    if form.is_valid():
        if done := attempt(
            request,
            lambda: services.organization_add(
                client=client, actor=request.user, **form.cleaned_data
            ),
        ):
            messages.success(
                request,
                f"{done.result.legal_name} added: it is a profile of its own and needs "
                "its own access grant.",
            )
    else:
        form_errors(request, form)
    return redirect("client_detail", public_id=client.public_id)


@firm_member_required
@require_POST
def official_add(request, public_id):
    """Record who signs for an organization: the provider, a delegate, or someone else."""
    organization = get_for_firm(
        Organization.objects.select_related("client"), request.firm, public_id=public_id
    )
    client = organization.client
    form = OfficialForm(request.POST, client=client)
    if form.is_valid():
        data = form.cleaned_data
        person = data["person"]
        delegate = form.delegates.get(person)
        attempt(
            request,
            lambda: services.official_save(
                organization=organization,
                actor=request.user,
                role=data["role"],
                name=data["name"],
                email=data["email"],
                is_provider=person == "provider",
                delegate=delegate,
            ),
            f"Recorded who signs for {organization.legal_name}.",
        )
    else:
        form_errors(request, form)
    return redirect("client_detail", public_id=client.public_id)


@firm_member_required
@require_POST
def official_remove(request, public_id):
    official = get_for_firm(
        Official.objects.select_related("organization__client"),
        request.firm,
        public_id=public_id,
    )
    attempt(
        request,
        lambda: services.official_remove(official=official, actor=request.user),
        f"{official.name} no longer signs for {official.organization.legal_name}.",
    )
    return redirect("client_detail", public_id=official.organization.client.public_id)


@firm_member_required
@require_POST
def client_ia(request, public_id):
    client = get_client_for(request, public_id)
    form = ClientIAForm(request.POST, instance=client)
    if form.is_valid():
        services.client_update_ia(client=client, actor=request.user, **form.cleaned_data)
        messages.success(request, f"{client.display_name}'s I&A login saved.")
    else:
        form_errors(request, form)
    return redirect("client_detail", public_id=client.public_id)


@firm_member_required
@require_POST
def client_reassign(request, public_id):
    client = get_client_for(request, public_id)
    form = ClientForm(firm=request.firm)
    field = form.fields["assigned_staff"]
    try:
        staff = field.clean(request.POST.get("assigned_staff"))
    except forms.ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        attempt(
            request,
            lambda: services.client_update(client=client, actor=request.user, assigned_staff=staff),
            "Client reassigned.",
        )
    return redirect("client_detail", public_id=client.public_id)


def _back(request, client):
    """Staff return to the client page; providers to their to-dos."""
    if request.membership.works_for_firm:
        return redirect("client_detail", public_id=client.public_id)
    return redirect("dashboard")


# --- delegates and portal access ------------------------------------------------------


def _ensure_staff_or_the_provider(request, client) -> None:
    """Delegates are managed by the firm's people and by the provider, not by a delegate."""
    if not request.membership.works_for_firm and client.user_id != request.user.pk:
        raise PermissionDenied("Only the provider or your credentialer manages delegates.")


@member_required()
@require_POST
def delegate_add(request, public_id):
    """Staff add a delegate on the provider's behalf; the provider adds their own."""
    client = get_client_for(
        request, public_id, Client.objects.prefetch_related("profiles__organization")
    )
    _ensure_staff_or_the_provider(request, client)
    form = DelegateForm(request.POST, profiles=client.profiles.all())
    if form.is_valid():
        data = form.cleaned_data
        attempt(
            request,
            lambda: services.delegate_save(
                client=client,
                actor=request.user,
                name=data["name"],
                email=data["email"],
                title=data["title"],
                roles=form.roles(),
            ),
            f"{data['name']} added as a delegate.",
        )
    else:
        form_errors(request, form)
    return _back(request, client)


@member_required()
@require_POST
def delegate_remove(request, public_id):
    delegate = get_for_firm(
        Delegate.objects.select_related("client"), request.firm, public_id=public_id
    )
    client = get_client_for(request, delegate.client.public_id)
    _ensure_staff_or_the_provider(request, client)
    attempt(
        request,
        lambda: services.delegate_remove(delegate=delegate, actor=request.user),
        f"{delegate.name} can no longer act for {client.display_name}.",
    )
    return _back(request, client)


@member_required()
@require_POST
def portal_invite(request, kind, public_id):
    """Invite the provider (staff only) or a delegate (staff, or the provider) to log in."""
    if kind == "client":
        if not request.membership.works_for_firm:
            raise PermissionDenied("Only your credentialer invites a provider.")
        subject = get_client_for(request, public_id)
        client = subject
    else:
        subject = get_for_firm(
            Delegate.objects.select_related("client"), request.firm, public_id=public_id
        )
        client = get_client_for(request, subject.client.public_id)
        _ensure_staff_or_the_provider(request, client)
    attempt(
        request,
        lambda: services.portal_invite(subject=subject, actor=request.user),
        f"Invitation sent to {subject.email}.",
    )
    return _back(request, client)


# --- import ---------------------------------------------------------------------------


@firm_member_required
def import_template(request):
    response = HttpResponse(importing.template_csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="credportal-clients-template.csv"'
    return response


@firm_member_required
def import_upload(request):
    """Upload, then a preview of every row; nothing is written until staff confirm."""
    form = ImportForm(request.POST or None, request.FILES or None)
    plan = None
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["file"]
        plan = importing.plan_import(firm=request.firm, text=text)
        if plan.error:
            form.add_error("file", plan.error)
            plan = None
        else:
            request.session[IMPORT_SESSION_KEY] = {"text": text, "fingerprint": plan.fingerprint}
    return render(request, "clients/import.html", {"form": form, "plan": plan})


@firm_member_required
@require_POST
def import_confirm(request):
    stash = request.session.get(IMPORT_SESSION_KEY)
    if not stash:
        messages.error(request, "Nothing to import: upload the file again.")
        return redirect("client_import")
    plan = importing.plan_import(firm=request.firm, text=stash["text"])
    if plan.fingerprint != stash["fingerprint"]:
        messages.error(request, "Your clients changed since the preview. Review the new preview.")
        request.session[IMPORT_SESSION_KEY] = {
            "text": stash["text"],
            "fingerprint": plan.fingerprint,
        }
        return render(request, "clients/import.html", {"form": ImportForm(), "plan": plan})
    done = attempt(
        request,
        lambda: importing.apply_import(firm=request.firm, plan=plan, actor=request.user),
        refused="Nothing was imported: {}",
    )
    if not done:
        return redirect("client_import")
    counts = done.result
    del request.session[IMPORT_SESSION_KEY]
    messages.success(
        request,
        f"Imported: {counts['new']} new, {counts['updated']} updated, "
        f"{plan.count('unchanged')} unchanged, {plan.count('error')} skipped with errors.",
    )
    return redirect("dashboard")
