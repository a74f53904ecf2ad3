"""Every change to a workflow: one function per transition.

Each one locks the row, checks the state it starts from (a second, racing call finds the new
state and gets a clear TransitionError), changes it, and records the event that appears on the
client's timeline, all in one transaction.
"""

from datetime import date, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Model
from django.utils import timezone

from clients import services as client_services
from clients.models import Client, Official, Profile
from notifications import outbox
from portal import audit
from portal.errors import DomainError
from portal.models import AuditEvent, Firm, User

from . import moves, notify
from .deadlines import (
    development_due_on,
    end_of_day,
    grant_deadline,
    reconsideration_due_on,
    signature_deadline,
)
from .errors import NotAllowed, TransitionError
from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    Holder,
    OpenStep,
    SignatureRound,
    Signer,
    started_again,
    superseded,
)
from .open_steps import client_changed, lock_in_order, one_refresh, refresh_read_models
from .rules import (
    UNDO_WINDOW,
    Party,
    Step,
    grant_step,
    may_do,
    may_sign,
    refusal,
    signer_refusal,
)

# --- the one transition mechanism -------------------------------------------------------


def _client_of(obj) -> Client:
    if isinstance(obj, Signer):
        obj = obj.signature_round
    profile = (
        obj.enrollment.profile
        if isinstance(obj, SignatureRound | DevelopmentRequest)
        else obj.profile  # access grants, enrollments, credentials
    )
    return profile.client


def _record(verb: str, obj: Model, *, actor: User | None, data: dict) -> None:
    client = _client_of(obj)
    audit.record(
        verb,
        actor=actor,
        firm=obj.firm,
        target=obj,
        target_label=str(obj),
        client_uuid=client.public_id,
        data=data,
    )
    client_changed(client.pk)


def _lock(obj):
    """Re-read `obj` under a row lock (SQLite: the IMMEDIATE transaction already serializes).

    Rows are locked parent first: a round, a development request or a signer after its
    application, and every one of them before the client (which `_record` locks). A service
    that moves a round and then its application, and one that edits the application, then
    wait for each other instead of deadlocking."""
    if isinstance(obj, SignatureRound | DevelopmentRequest):
        Enrollment.objects.select_for_update().filter(pk=obj.enrollment_id).exists()
    elif isinstance(obj, Signer):
        Enrollment.objects.select_for_update(of=("self",)).filter(
            rounds=obj.signature_round_id
        ).exists()
    related = {
        AccessGrant: ("firm", "profile__client", "profile__organization"),
        SignatureRound: (
            "firm",
            "enrollment__profile__client",
            "enrollment__profile__organization",
        ),
        DevelopmentRequest: (
            "firm",
            "enrollment__profile__client",
            "enrollment__profile__organization",
        ),
        Signer: (
            "firm",
            "official",
            "signature_round__enrollment__profile__client",
            "signature_round__enrollment__profile__organization",
        ),
        Enrollment: ("firm", "profile__client", "profile__organization"),
        Credential: ("firm", "kind", "profile__client", "profile__organization"),
    }[type(obj)]
    return type(obj).objects.select_for_update(of=("self",)).select_related(*related).get(pk=obj.pk)


def _move(
    obj,
    to: str,
    *,
    actor: User | None,
    verb: str,
    action: str,
    reason: str = "",
    cms_date: date | None = None,
    extra: dict | None = None,
    **fields,
):
    """Move `obj` (already locked) to state `to`, if its workflow allows it from where it is.
    `cms_date`: the day it happened at CMS, when staff record it later (the event keeps both
    that day and, as its own time, when it was recorded); `extra`: more for the event."""
    model = type(obj)
    if to not in model.TRANSITIONS[obj.State(obj.state)]:
        noun = model._meta.verbose_name
        raise TransitionError(
            f"Can't {action}: this {noun} is {obj.get_state_display().lower()}. "
            "Nothing was changed."
        )
    old = obj.state
    now = timezone.now()
    obj.state = to
    obj.state_entered_at = now
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save(update_fields={"state", "state_entered_at", *fields})
    if isinstance(obj, Enrollment) and obj.deadline is not None:
        notify.revalidation_clock_moved(obj)
    data = {"from": old, "to": to}
    if reason:
        data["reason"] = reason
    if cms_date is not None:
        data["cms_date"] = cms_date.isoformat()
        if "state_entered_at" in fields:  # the moment at CMS: durations count from it
            data["cms_at"] = fields["state_entered_at"].isoformat()
    _record(verb, obj, actor=actor, data=data | (extra or {}))
    return obj


# The oldest date staff may give for something that happened at CMS: a longer gap would mean
# a clock (30 days for a request, 20 to sign) that has already run out.
CMS_DATE_MAX_DAYS_BACK = 60


def _cms_day(firm, on: date | None, *, what: str, starts_clock: bool = True) -> date:
    """The day something happened at CMS, in the firm's zone (no date: today). Never in the
    future; for a day that starts a clock, not so long ago that the clock has run out."""
    today = timezone.now().astimezone(firm.zone).date()
    if on is None:
        return today
    if on > today:
        raise TransitionError(f"The date {what} is in the future: give the day it happened.")
    if starts_clock and on < today - timedelta(days=CMS_DATE_MAX_DAYS_BACK):
        raise TransitionError(
            f"The date {what} is more than {CMS_DATE_MAX_DAYS_BACK} days ago: its clock has "
            "run out; record what happened since instead."
        )
    return on


def _on_day(firm, day: date) -> datetime:
    """`day` (already checked) at the time of day it is recorded, in the firm's zone."""
    now = timezone.now()
    local_now = now.astimezone(firm.zone)
    if day == local_now.date():
        return now
    return local_now.replace(year=day.year, month=day.month, day=day.day).astimezone(now.tzinfo)


def _cms_moment(firm, on: date | None, *, what: str) -> datetime:
    """When something happened at CMS (`on`, a date in the firm's zone, at the time of day it
    is recorded); no date, or today, is now. Deadlines and reminders count from it."""
    return _on_day(firm, _cms_day(firm, on, what=what))


# --- access grants ----------------------------------------------------------------------


@transaction.atomic
@one_refresh
def grant_create(
    *,
    profile: Profile,
    method: str,
    actor: User,
    requested_role: str = "",
    pecos: bool = True,
    nppes: bool = True,
    send: bool = True,
    sent_on: date | None = None,
) -> AccessGrant:
    """Prepare an access grant for a profile and, by default, send it at once (`sent_on`:
    the day it was sent in I&A, if not today)."""
    if method == AccessGrant.Method.ADD_STAFF and not requested_role:
        raise TransitionError("Choose the CMS role the provider should give you when adding staff.")
    if method != AccessGrant.Method.ADD_STAFF:
        requested_role = ""
    if not (pecos or nppes):
        raise TransitionError("Choose at least one system: PECOS or NPPES.")
    if send:
        _cms_moment(profile.firm, sent_on, what="it was sent")  # refuse before writing
    grant = AccessGrant(
        firm=profile.firm,
        profile=profile,
        method=method,
        requested_role=requested_role,
        pecos=pecos,
        nppes=nppes,
        # A new request after an expired or rejected one is its next attempt, however it
        # was started: the old one is then settled ("Send again" and the stuck report
        # read the link).
        previous=AccessGrant.objects.filter(
            profile=profile, state__in=AccessGrant.RETRYABLE_STATES, next_attempt__isnull=True
        )
        .order_by("-created_at")
        .first(),
    )
    try:
        with transaction.atomic():
            grant.save()
    except IntegrityError:
        raise TransitionError(
            f"{profile.label} already has an access grant in progress or active."
        ) from None
    _record("grant.prepared", grant, actor=actor, data={"to": grant.state, "method": method})
    if send:
        grant = grant_send(grant=grant, actor=actor, sent_on=sent_on)
    return grant


@transaction.atomic
@one_refresh
def grant_send(*, grant: AccessGrant, actor: User, sent_on: date | None = None) -> AccessGrant:
    """The firm sent the connection request (or asked the provider to add it) in I&A, today
    or on `sent_on`: the clock runs from then."""
    grant = _lock(grant)
    sent = _cms_moment(grant.firm, sent_on, what="it was sent")
    deadline = None
    if grant.method == AccessGrant.Method.CONNECTION_REQUEST:
        deadline = grant_deadline(grant.firm, sent)
    grant = _move(
        grant,
        AccessGrant.State.AWAITING_PROVIDER,
        actor=actor,
        verb="grant.sent",
        action="send it",
        cms_date=sent_on,
        sent_at=sent,
        deadline=deadline,
        state_entered_at=sent,
    )
    notify.grant_sent(grant)
    return grant


def _ensure_may(party: Party, step: Step, profile: Profile, requested_role: str = "") -> None:
    if not may_do(party, step, profile, requested_role):
        raise NotAllowed(refusal(step, profile, requested_role, profile.client.display_name))


@transaction.atomic
@one_refresh
def grant_claim_done(*, grant: AccessGrant, party: Party, actor: User) -> AccessGrant:
    """The provider (or a delegate allowed to) says "I've done this": staff verify next."""
    grant = _lock(grant)
    _ensure_may(party, grant_step(grant), grant.profile, grant.requested_role)
    if grant.state == AccessGrant.State.PROVIDER_SAYS_DONE:
        raise TransitionError("You already told us this is done; we are checking it.")
    if grant.deadline and grant.deadline <= timezone.now():
        raise TransitionError(
            "This request expired before it was approved. We will send a new one."
        )
    grant = _move(
        grant,
        AccessGrant.State.PROVIDER_SAYS_DONE,
        actor=actor,
        verb="grant.provider_says_done",
        action="mark it done",
        reason=f"{party.name} says it is done",
    )
    notify.grant_claimed(grant, party)
    return grant


@transaction.atomic
@one_refresh
def grant_firm_not_found(*, grant: AccessGrant, party: Party, actor: User) -> AccessGrant:
    """ "I can't find you": the provider could not find the firm to add it as surrogate.
    The step stays open; staff are asked to send a connection request instead."""
    grant = _lock(grant)
    _ensure_may(party, Step.ADD_SURROGATE, grant.profile)
    if grant.method != AccessGrant.Method.ADD_SURROGATE or grant.state not in (
        AccessGrant.PENDING_STATES
    ):
        raise TransitionError("This step is not a search for us in I&A.")
    _record(
        "grant.firm_not_found",
        grant,
        actor=actor,
        data={"reason": f"{party.name} can't find the firm in I&A"},
    )
    notify.grant_firm_not_found(grant, party)
    return grant


@transaction.atomic
@one_refresh
def grant_mark_active(*, grant: AccessGrant, actor: User) -> AccessGrant:
    """Staff checked in PECOS: access works."""
    grant = _lock(grant)
    grant = _move(
        grant, AccessGrant.State.ACTIVE, actor=actor, verb="grant.active", action="mark it active"
    )
    notify.grant_active(grant)
    return grant


@transaction.atomic
@one_refresh
def grant_not_yet_done(*, grant: AccessGrant, actor: User, reason: str = "") -> AccessGrant:
    """Staff could not see the access the provider reported: back to the provider."""
    grant = _lock(grant)
    moves.ensure(moves.GRANT_MOVES["not-yet"], grant)
    grant = _move(
        grant,
        AccessGrant.State.AWAITING_PROVIDER,
        actor=actor,
        verb="grant.not_yet_done",
        action="send it back to the provider",
        reason=reason or "Access not visible yet",
    )
    notify.grant_waiting_again(grant)
    return grant


@transaction.atomic
@one_refresh
def grant_expire(*, grant: AccessGrant, now: datetime | None = None) -> AccessGrant:
    """Day 30 passed without approval: CMS rejected the request automatically."""
    now = now or timezone.now()
    if grant.deadline is None or grant.deadline > now:
        raise TransitionError("This request has not reached its deadline yet.")
    if not grants_expire(ids=[grant.pk], now=now):
        grant.refresh_from_db(fields=["state"])
        raise TransitionError(
            f"Can't expire it: this access grant is {grant.get_state_display().lower()}."
        )
    grant.refresh_from_db()
    return grant


def grants_due_for_expiry(now: datetime):
    return AccessGrant.objects.filter(state__in=AccessGrant.PENDING_STATES, deadline__lte=now)


@transaction.atomic
@one_refresh
def grants_expire(*, ids: list[int], now: datetime | None = None) -> list[AccessGrant]:
    """Expire these pending requests whose deadline passed, each exactly once, in bulk.

    1. Lock the rows that are still pending and due (SKIP LOCKED: a concurrent scan takes
       others), and move them to expired with one UPDATE.
    2. Record one event per grant (bulk insert) and touch each client's last activity.
    3. Tell each provider, alert the assigned staff, cancel the remaining reminders.
    """
    now = now or timezone.now()
    due = grants_due_for_expiry(now).filter(pk__in=ids)
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True, of=("self",))
    grants = list(due.select_related("firm", "profile__client", "profile__organization"))
    if not grants:
        return []
    AccessGrant.objects.filter(
        pk__in=[g.pk for g in grants], state__in=AccessGrant.PENDING_STATES
    ).update(state=AccessGrant.State.EXPIRED, state_entered_at=now)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                verb="grant.expired",
                firm=grant.firm,
                target_type=grant._meta.label_lower,
                target_id=str(grant.public_id),
                target_label=str(grant),
                client_uuid=grant.profile.client.public_id,
                data={
                    "from": grant.state,
                    "to": AccessGrant.State.EXPIRED,
                    "reason": "Not approved within the deadline",
                },
                created_at=now,
            )
            for grant in grants
        ]
    )
    clients = Client.objects.filter(pk__in={g.profile.client_id for g in grants})
    lock_in_order(clients)
    refresh_read_models(clients, last_activity_at=now)
    for grant in grants:
        grant.state, grant.state_entered_at = AccessGrant.State.EXPIRED, now
    notify.grants_expired(grants)
    return grants


def grants_expire_due(*, now: datetime | None = None, batch_size: int = 2000) -> int:
    """The periodic scan: expire every due request, batch by batch. Safe to run twice at once."""
    now = now or timezone.now()
    total = 0
    while True:
        ids = list(
            grants_due_for_expiry(now)
            .order_by("deadline")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        expired = grants_expire(ids=ids, now=now)
        total += len(expired)
        if not expired:
            return total  # another scan holds (or took) them all


@transaction.atomic
@one_refresh
def grant_record_rejected(*, grant: AccessGrant, actor: User, reason: str = "") -> AccessGrant:
    grant = _lock(grant)
    grant = _move(
        grant,
        AccessGrant.State.REJECTED,
        actor=actor,
        verb="grant.rejected",
        action="record a rejection",
        reason=reason or "Rejected",
    )
    notify.grant_waiting_stopped(grant)
    return grant


@transaction.atomic
@one_refresh
def grant_record_expired(*, grant: AccessGrant, actor: User) -> AccessGrant:
    """Staff saw in I&A that the request expired (before the scan did)."""
    grant = _lock(grant)
    grant = _move(
        grant,
        AccessGrant.State.EXPIRED,
        actor=actor,
        verb="grant.expired",
        action="record an expiry",
        reason="Recorded by staff",
    )
    notify.grants_expired([grant])
    return grant


@transaction.atomic
@one_refresh
def grant_cancel(*, grant: AccessGrant, actor: User, reason: str = "") -> AccessGrant:
    grant = _lock(grant)
    grant = _move(
        grant,
        AccessGrant.State.CANCELLED,
        actor=actor,
        verb="grant.cancelled",
        action="cancel it",
        reason=reason,
    )
    notify.grant_waiting_stopped(grant)
    return grant


@transaction.atomic
@one_refresh
def grant_send_again(*, grant: AccessGrant, actor: User) -> AccessGrant:
    """A new attempt after an expiry or rejection, linked to the old one; history stays."""
    grant = _lock(grant)
    if grant.state not in AccessGrant.RETRYABLE_STATES:
        raise TransitionError(
            f"Can't send again: this request is {grant.get_state_display().lower()}."
        )
    if AccessGrant.objects.filter(previous=grant).exists():
        raise TransitionError("This request was already sent again.")
    attempt = AccessGrant(
        firm=grant.firm,
        profile=grant.profile,
        method=grant.method,
        requested_role=grant.requested_role,
        pecos=grant.pecos,
        nppes=grant.nppes,
        previous=grant,
    )
    try:
        with transaction.atomic():
            attempt.save()
    except IntegrityError:
        raise TransitionError(
            f"{grant.profile.label} already has another access grant in progress."
        ) from None
    _record(
        "grant.prepared",
        attempt,
        actor=actor,
        data={"to": attempt.state, "previous": str(grant.public_id)},
    )
    return grant_send(grant=attempt, actor=actor)


# --- enrollments ------------------------------------------------------------------------


@transaction.atomic
@one_refresh
def enrollment_create(
    *, profile: Profile, kind: str, actor: User, assigned_staff: User | None = None
) -> Enrollment:
    if kind == Enrollment.Kind.REASSIGNMENT:
        if not profile.is_individual:
            raise TransitionError(
                "A reassignment is the provider's own application: start it on their "
                "individual profile."
            )
        if not profile.client.organizations.exists():
            raise TransitionError(
                "A reassignment of benefits is to an organization: add the organization "
                "(and who signs for it) first."
            )
    enrollment = Enrollment(
        firm=profile.firm,
        profile=profile,
        kind=kind,
        assigned_staff=assigned_staff or profile.client.assigned_staff,
    )
    try:
        with transaction.atomic():
            enrollment.save()
    except IntegrityError:
        raise TransitionError(
            f"{profile.label} already has an open {enrollment.get_kind_display().lower()}: "
            "continue that one, or withdraw it first."
        ) from None
    _record("enrollment.created", enrollment, actor=actor, data={"to": enrollment.state})
    # A rejected application of this kind is now settled (`started_again`): a
    # revalidation's due date (CMS's, the provider's) moves to the new one, alerts and all.
    revalidation = _revalidation()
    for replaced in (
        Enrollment.objects.filter(superseded(), profile=profile, kind=kind)
        .annotate(started_again=started_again())  # as the clock's alerts read it
        .order_by("-created_at")
    ):
        notify.revalidation_clock_moved(replaced)
        due_on = replaced.due_on
        if (
            due_on
            and enrollment.due_on is None
            and not revalidation.due_refusal(profile.firm, due_on)
        ):
            enrollment = revalidation.revalidation_set_due(
                profile=profile, due_on=due_on, actor=actor
            )
    return enrollment


def _revalidation():
    """Revalidation due dates (which build on these services): a new application started
    over a rejected one takes its date, so imported late."""
    from . import revalidation

    return revalidation


def _close_open_work(enrollment: Enrollment, *, actor: User, because: str) -> None:
    """An outcome ends the application's open signature rounds and development requests."""
    for open_round in enrollment.rounds.filter(state__in=SignatureRound.OPEN_STATES):
        notify.round_waiting_stopped(open_round)
        _move(
            _lock(open_round),
            SignatureRound.State.CANCELLED,
            actor=actor,
            verb="round.cancelled",
            action="cancel it",
            reason=because,
            closed_at=timezone.now(),
        )
        _round_closed(open_round, actor=actor)
    for request in enrollment.development_requests.filter(state__in=DevelopmentRequest.OPEN_STATES):
        notify.development_waiting_stopped(request)
        _move(
            _lock(request),
            DevelopmentRequest.State.CANCELLED,
            actor=actor,
            verb="development.cancelled",
            action="cancel it",
            reason=because,
        )


@transaction.atomic
@one_refresh
def enrollment_change_state(
    *, enrollment: Enrollment, to: str, actor: User, reason: str = ""
) -> Enrollment:
    """Staff move the application between preparing and submitted; signature rounds,
    development requests and outcomes (with their dates) have their own actions."""
    enrollment = _lock(enrollment)
    if to == Enrollment.State.AWAITING_SIGNATURE:
        raise TransitionError("Open a signature round to ask for a signature.")
    if to == Enrollment.State.IN_DEVELOPMENT:
        raise TransitionError("Record the development request: its letter date and due date.")
    if to in Enrollment.OUTCOMES:
        raise TransitionError("Record the outcome with the date of the contractor's decision.")
    if enrollment.rounds.filter(state__in=SignatureRound.OPEN_STATES).exists():
        raise TransitionError("A signature round is open: confirm or cancel it first.")
    if enrollment.development_requests.filter(state__in=DevelopmentRequest.OPEN_STATES).exists():
        raise TransitionError(
            "A development request is open: record its response (or cancel it) first."
        )
    return _move(
        enrollment,
        to,
        actor=actor,
        verb="enrollment.state_changed",
        action=f"mark it {Enrollment.State(to).label.lower()}",
        reason=reason,
        holder=Enrollment.DEFAULT_HOLDER[to],
        holder_reason=reason,
    )


# Outcomes whose reason staff must give (the letter's words): an approval speaks for itself.
OUTCOMES_WITH_REASON = (
    Enrollment.State.DENIED,
    Enrollment.State.REJECTED,
    Enrollment.State.RETURNED,
    Enrollment.State.WITHDRAWN,
)
NEED_EFFECTIVE_DATE = "Give the effective date CMS granted: it is on the approval letter."
# The latest effective date an approval may carry: CMS grants past or current dates.
EFFECTIVE_DATE_MAX_DAYS_AHEAD = 365


@transaction.atomic
@one_refresh
def enrollment_record_outcome(
    *,
    enrollment: Enrollment,
    outcome: str,
    actor: User,
    decided_on: date | None = None,
    reason: str = "",
    effective_date: date | None = None,
    reconsider_by: date | None = None,
) -> Enrollment:
    """What the contractor decided (or the firm withdrew), on `decided_on` (the letter's
    date): approved with its effective date; denied, which opens the reconsideration window
    (`reconsider_by`, or the firm's default after the letter); rejected (fixed by a corrected
    resubmission); returned (a new application is needed); withdrawn."""
    enrollment = _lock(enrollment)
    firm = enrollment.firm
    if outcome not in Enrollment.OUTCOMES:
        raise TransitionError("Choose an outcome: approved, denied, rejected, returned, withdrawn.")
    label = Enrollment.State(outcome).label
    if enrollment.state == Enrollment.State.DENIED:
        raise TransitionError(
            "This application was denied: a reversal comes through its reconsideration."
        )
    if outcome not in Enrollment.TRANSITIONS[Enrollment.State(enrollment.state)]:
        raise TransitionError(
            f"Can't record it {label.lower()}: this enrollment is "
            f"{enrollment.get_state_display().lower()}. Nothing was changed."
        )
    reason = reason.strip()
    if outcome in OUTCOMES_WITH_REASON and not reason:
        raise TransitionError(
            f"Say why it was {label.split(' (')[0].lower()}: the letter's reason."
        )
    # A decision's date may be old (a client taken on after a denial): a denial's window is
    # checked against its own deadline below, not against the 60 days of other clocks.
    day = _cms_day(firm, decided_on, what="of the decision", starts_clock=False)
    fields: dict = {"decided_on": day, "outcome_reason": reason}
    extra: dict = {"decided_on": day.isoformat()}
    if outcome == Enrollment.State.APPROVED:
        if effective_date is None:
            raise TransitionError(
                "Give the effective date CMS granted: it is on the approval letter."
            )
        if effective_date > day + timedelta(days=EFFECTIVE_DATE_MAX_DAYS_AHEAD):
            raise TransitionError("The effective date is more than a year after the decision.")
        fields["effective_date"] = effective_date
        extra["effective_date"] = effective_date.isoformat()
    if outcome == Enrollment.State.DENIED:
        due = reconsider_by or reconsideration_due_on(firm, day)
        if due <= day:
            raise TransitionError("The reconsideration deadline must be after the denial date.")
        extra["reconsider_by"] = due.isoformat()
        # A window that closed before the denial was recorded is not a clock any more: the
        # denial is recorded as it stands, and the timeline says so.
        if due >= timezone.now().astimezone(firm.zone).date():
            fields["reconsideration"] = Enrollment.Reconsideration.OPEN
            fields["reconsideration_deadline"] = end_of_day(firm, due)
        else:
            extra["reconsideration"] = "window closed before the denial was recorded"
    _close_open_work(enrollment, actor=actor, because=f"Enrollment {label.lower()}")
    enrollment = _move(
        enrollment,
        outcome,
        actor=actor,
        verb="enrollment.outcome",
        action=f"record it {label.lower()}",
        reason=reason,
        extra=extra,
        cms_date=day,
        state_entered_at=_on_day(firm, day),
        holder=Enrollment.DEFAULT_HOLDER[outcome],
        holder_reason="",
        **fields,
    )
    notify.enrollment_outcome(enrollment)
    return enrollment


def _reconsideration_move(enrollment: Enrollment, to: str, *, action: str) -> None:
    current = Enrollment.Reconsideration(enrollment.reconsideration)
    if to not in Enrollment.RECONSIDERATION_MOVES.get(current, set()):
        state = current.label.lower() if current else "not open"
        raise TransitionError(f"Can't {action}: the reconsideration is {state}.")


@transaction.atomic
@one_refresh
def reconsideration_record_filed(
    *, enrollment: Enrollment, actor: User, filed_on: date | None = None
) -> Enrollment:
    """The reconsideration request went to the contractor (on `filed_on`): the window's clock
    stops, and the ball is with the contractor."""
    enrollment = _lock(enrollment)
    _reconsideration_move(enrollment, Enrollment.Reconsideration.FILED, action="record it filed")
    day = _cms_day(enrollment.firm, filed_on, what="it was filed", starts_clock=False)
    if (
        enrollment.reconsideration_deadline
        and day > enrollment.reconsideration_deadline.astimezone(enrollment.firm.zone).date()
    ):
        raise TransitionError("That is after the reconsideration deadline: it was filed too late.")
    return _reconsideration_set(
        enrollment,
        actor=actor,
        verb="enrollment.reconsideration_filed",
        to=Enrollment.Reconsideration.FILED,
        data={"cms_date": day.isoformat()},
        reconsideration_filed_on=day,
        holder=Holder.CMS,
        holder_reason="Reconsideration with the contractor",
    )


@transaction.atomic
@one_refresh
def reconsideration_decline(*, enrollment: Enrollment, actor: User, reason: str) -> Enrollment:
    """The provider and the firm decided not to ask for reconsideration: the window closes."""
    enrollment = _lock(enrollment)
    _reconsideration_move(
        enrollment, Enrollment.Reconsideration.DECLINED, action="record it not requested"
    )
    if not reason.strip():
        raise TransitionError("Say why reconsideration is not requested.")
    return _reconsideration_set(
        enrollment,
        actor=actor,
        verb="enrollment.reconsideration_declined",
        to=Enrollment.Reconsideration.DECLINED,
        data={"reason": reason.strip()},
    )


@transaction.atomic
@one_refresh
def reconsideration_record_decision(
    *,
    enrollment: Enrollment,
    actor: User,
    reversed_: bool,
    decided_on: date | None = None,
    effective_date: date | None = None,
    reason: str = "",
) -> Enrollment:
    """The contractor decided the reconsideration: the denial upheld, or reversed (approved,
    with the effective date CMS granted)."""
    enrollment = _lock(enrollment)
    to = Enrollment.Reconsideration.REVERSED if reversed_ else Enrollment.Reconsideration.UPHELD
    _reconsideration_move(enrollment, to, action="record its decision")
    day = _cms_day(enrollment.firm, decided_on, what="of the decision", starts_clock=False)
    if not reversed_:
        return _reconsideration_set(
            enrollment,
            actor=actor,
            verb="enrollment.reconsideration_upheld",
            to=to,
            data={"cms_date": day.isoformat(), "reason": reason.strip()},
            holder=Holder.FIRM,
            holder_reason="",
        )
    if effective_date is None:
        raise TransitionError(NEED_EFFECTIVE_DATE)
    enrollment.reconsideration = to
    enrollment = _move(
        enrollment,
        Enrollment.State.APPROVED,
        actor=actor,
        verb="enrollment.outcome",
        action="record it approved",
        reason=reason.strip() or "Denial reversed on reconsideration",
        extra={"decided_on": day.isoformat(), "effective_date": effective_date.isoformat()},
        reconsideration=to,
        decided_on=day,
        effective_date=effective_date,
        outcome_reason=reason.strip() or "Denial reversed on reconsideration",
        holder=Holder.FIRM,
        holder_reason="",
    )
    notify.enrollment_outcome(enrollment)
    return enrollment


def reconsiderations_lapse_due(*, now: datetime | None = None) -> int:
    """The periodic scan: a reconsideration window whose deadline passed with nothing filed
    closes (the denial stands; the timeline says the window lapsed). Safe to run twice."""
    now = now or timezone.now()
    lapsed = 0
    for enrollment in Enrollment.objects.filter(
        reconsideration=Enrollment.Reconsideration.OPEN, reconsideration_deadline__lte=now
    ).only("pk")[:2000]:
        with transaction.atomic():
            enrollment = _lock(enrollment)
            if enrollment.reconsideration != Enrollment.Reconsideration.OPEN:
                continue  # another scan (or staff) got there first
            _reconsideration_set(
                enrollment,
                actor=None,
                verb="enrollment.reconsideration_lapsed",
                to=Enrollment.Reconsideration.LAPSED,
                data={"reason": "Deadline passed with no request filed"},
            )
            lapsed += 1
    return lapsed


def _reconsideration_set(enrollment, *, actor, verb, to, data, **fields) -> Enrollment:
    old = enrollment.reconsideration
    enrollment.reconsideration = to
    for name, value in fields.items():
        setattr(enrollment, name, value)
    enrollment.save(update_fields={"reconsideration", *fields})
    notify.reconsideration_waiting_stopped(enrollment)
    # Not "from"/"to": those are the enrollment's own states (the timeline, the durations
    # and the invariants read them); the reconsideration has its own.
    _record(
        verb,
        enrollment,
        actor=actor,
        data={"reconsideration_from": old, "reconsideration": to, **data},
    )
    return enrollment


@transaction.atomic
@one_refresh
def enrollment_update(
    *,
    enrollment: Enrollment,
    actor: User,
    holder: str,
    holder_reason: str,
    follow_up_on,
    tracking_number: str,
    assigned_staff: User | None,
) -> Enrollment:
    """Who holds the ball and why, the follow-up date, the tracking number, the assignee."""
    enrollment = _lock(enrollment)
    changes = {}
    for name, value in (
        ("holder", holder),
        ("holder_reason", holder_reason),
        ("follow_up_on", follow_up_on),
        ("tracking_number", tracking_number),
        ("assigned_staff", assigned_staff),
    ):
        if getattr(enrollment, name) != value:
            changes[name] = value
    if not changes:
        raise TransitionError("Nothing changed.")
    for name, value in changes.items():
        setattr(enrollment, name, value)
    enrollment.save(update_fields=list(changes))
    _record(
        "enrollment.updated",
        enrollment,
        actor=actor,
        data={name: str(getattr(value, "email", value)) for name, value in changes.items()},
    )
    return enrollment


# --- signature rounds -------------------------------------------------------------------


def _signers_for(
    enrollment: Enrollment, *, official: Official | None, provider_pecos_email: str
) -> list[Signer]:
    """Who signs this application (not yet saved): the provider, an official of the
    organization, or both (`rules.signers_needed`). The official is the one staff chose, or
    the only one recorded."""
    profile = enrollment.profile
    client = profile.client
    provider_signs, official_signs = enrollment.signers_needed
    signers = []
    if provider_signs:
        signers.append(
            Signer(
                role=Signer.Role.PROVIDER,
                name=client.display_name,
                pecos_email=provider_pecos_email or client.email,
                is_provider=True,
            )
        )
    if official_signs:
        candidates = Official.objects.filter(is_active=True).select_related("organization")
        candidates = (
            candidates.filter(organization__client=client)
            if profile.is_individual  # a reassignment: to one of the provider's organizations
            else candidates.filter(organization=profile.organization)
        )
        if official is None:
            found = list(candidates[:2])
            if not found:
                raise TransitionError(
                    "Record the organization's Authorized or Delegated Official first (on "
                    "the client page): they sign its applications."
                )
            if len(found) > 1:
                raise TransitionError(
                    "Choose which Authorized or Delegated Official signs this application."
                )
            official = found[0]
        elif not candidates.filter(pk=official.pk).exists():
            raise TransitionError("That official is not one of this organization's.")
        signers.append(
            Signer(
                role=official.role,
                name=official.name,
                pecos_email=official.email,
                is_provider=official.is_provider,
                official=official,
            )
        )
    return signers


def _open_round(
    enrollment: Enrollment,
    *,
    actor: User,
    reason: str,
    method: str,
    revision: bool,
    submitted_on: date | None = None,
    official: Official | None = None,
    provider_pecos_email: str = "",
):
    number = (enrollment.rounds.aggregate(n=Max("number"))["n"] or 0) + 1
    now = _cms_moment(enrollment.firm, submitted_on, what="it was submitted in PECOS")
    signers = _signers_for(enrollment, official=official, provider_pecos_email=provider_pecos_email)
    signature_round = SignatureRound(
        firm=enrollment.firm,
        enrollment=enrollment,
        number=number,
        is_revision=revision,
        reason=reason,
        method=method,
        opened_at=now,
        state_entered_at=now,
        deadline=signature_deadline(enrollment.firm, now),
    )
    try:
        with transaction.atomic():
            signature_round.save()
    except IntegrityError:
        raise TransitionError("A signature round is already open on this enrollment.") from None
    signature_round.enrollment = enrollment
    for signer in signers:
        signer.firm, signer.signature_round, signer.state_entered_at = (
            enrollment.firm,
            signature_round,
            now,
        )
    Signer.objects.bulk_create(signers)
    _record(
        "round.opened",
        signature_round,
        actor=actor,
        data={
            "to": signature_round.state,
            "number": number,
            "reason": reason,
            "method": method,
            "signers": [f"{signer.name} ({signer.get_role_display()})" for signer in signers],
            **(
                {"cms_date": submitted_on.isoformat(), "cms_at": now.isoformat()}
                if submitted_on
                else {}
            ),
        },
    )
    resubmitted = enrollment.state == Enrollment.State.REJECTED
    _move(
        enrollment,
        Enrollment.State.AWAITING_SIGNATURE,
        actor=actor,
        verb="enrollment.state_changed",
        action="ask for a signature",
        reason=f"Signature round {number}" + (" (corrected resubmission)" if resubmitted else ""),
        cms_date=submitted_on,
        state_entered_at=now,
        holder=Holder.PROVIDER,
        holder_reason=f"Signature round {number}",
        **({"decided_on": None, "outcome_reason": ""} if resubmitted else {}),
    )
    notify.round_opened(signature_round)
    if signature_round.method == SignatureRound.Method.UPLOAD:
        _statements().statement_request(signature_round=signature_round, actor=actor)
    return signature_round


def _statements():
    """The credentials file (which builds on these services) keeps a wet-signed round's
    certification statement: the one place rounds call into it, so imported late."""
    from . import credentials

    return credentials


def _round_closed(signature_round: SignatureRound, *, actor: User | None) -> None:
    if signature_round.method == SignatureRound.Method.UPLOAD:
        _statements().statement_no_longer_needed(signature_round=signature_round, actor=actor)


@transaction.atomic
@one_refresh
def round_open(
    *,
    enrollment: Enrollment,
    actor: User,
    method: str = SignatureRound.Method.ELECTRONIC,
    submitted_on: date | None = None,
    official: Official | None = None,
    provider_pecos_email: str = "",
) -> SignatureRound:
    """The application was submitted in PECOS (today or on `submitted_on`) and waits for its
    signatures for the first time: CMS's 20 days run from the submission. `official`: the
    organization's official who signs (if it has more than one); `provider_pecos_email`: the
    provider's address in PECOS, if not the one on file."""
    enrollment = _lock(enrollment)
    if enrollment.state != Enrollment.State.PREPARING:
        raise TransitionError(
            "The first signature is asked while preparing; after submission open a revision."
        )
    return _open_round(
        enrollment,
        actor=actor,
        reason="Initial signature",
        method=method,
        revision=False,
        submitted_on=submitted_on,
        official=official,
        provider_pecos_email=provider_pecos_email,
    )


@transaction.atomic
@one_refresh
def round_open_revision(
    *,
    enrollment: Enrollment,
    actor: User,
    reason: str,
    method: str = SignatureRound.Method.ELECTRONIC,
    submitted_on: date | None = None,
    official: Official | None = None,
    provider_pecos_email: str = "",
) -> SignatureRound:
    """A correction after submission needs a new signature: round N+1 (`submitted_on`: the
    day the revision was submitted in PECOS, if not today). After a rejection, this is the
    corrected resubmission: a new submission, signed again."""
    enrollment = _lock(enrollment)
    if not reason.strip():
        raise TransitionError("Say what changed: the provider sees it with the request to sign.")
    if enrollment.state not in (
        Enrollment.State.SUBMITTED,
        Enrollment.State.IN_DEVELOPMENT,
        Enrollment.State.REJECTED,
    ):
        raise TransitionError(
            "A revision round follows a submission; this enrollment is "
            f"{enrollment.get_state_display().lower()}."
        )
    if (
        enrollment.state == Enrollment.State.REJECTED
        and Enrollment.objects.filter(superseded(), pk=enrollment.pk).exists()
    ):
        raise TransitionError(
            f"{enrollment.profile.label} has a newer {enrollment.get_kind_display().lower()}, "
            "started after this one was rejected: continue that one instead."
        )
    return _open_round(
        enrollment,
        actor=actor,
        reason=reason.strip(),
        method=method,
        revision=True,
        submitted_on=submitted_on,
        official=official,
        provider_pecos_email=provider_pecos_email,
    )


@transaction.atomic
@one_refresh
def round_claim_signed(*, signature_round: SignatureRound, party: Party, actor: User):
    """The party says they signed: the first of the round's signers they sign as."""
    signers = list(signature_round.signers.select_related("official").order_by("pk"))
    theirs = [signer for signer in signers if may_sign(party, signer)]
    if not theirs:
        raise NotAllowed(signer_refusal(signers[0]) if signers else "Nobody signs this round.")
    waiting = [signer for signer in theirs if signer.state == Signer.State.AWAITING]
    signer_claim_signed(signer=(waiting or theirs)[0], party=party, actor=actor)
    signature_round.refresh_from_db()
    return signature_round


@transaction.atomic
@one_refresh
def signer_claim_signed(*, signer: Signer, party: Party, actor: User) -> Signer:
    """ "I've signed" from one signer. When every signer has said so (or was verified), the
    round waits for the firm to verify (or, mailed, for the contractor to receive it)."""
    signature_round = _lock(signer.signature_round)
    signer = _lock(signer)
    if not may_sign(party, signer):
        raise NotAllowed(signer_refusal(signer))
    if not signature_round.is_open:
        raise TransitionError(
            f"This signature round is {signature_round.get_state_display().lower()}: "
            "nothing to sign."
        )
    if signer.state != Signer.State.AWAITING:
        raise TransitionError("You already told us you signed; we are checking it.")
    mailed = signature_round.is_mailed_method
    signer = _move(
        signer,
        Signer.State.SAYS_SIGNED,
        actor=actor,
        verb="signer.says_signed",
        action="mark it signed",
        reason=(
            f"{party.name} says the signed statement is in the mail to the contractor"
            if mailed
            else f"{party.name} says it is signed"
        ),
    )
    notify.signer_claimed(signer, party)
    if signature_round.state == SignatureRound.State.AWAITING_SIGNATURE and not (
        signature_round.signers.filter(state=Signer.State.AWAITING).exists()
    ):
        if mailed:
            _move(
                signature_round,
                SignatureRound.State.MAILED,
                actor=actor,
                verb="round.mailed",
                action="record it mailed",
                reason="Every signer says the signed statement is in the mail",
                mailed_at=timezone.now(),
            )
        else:
            _move(
                signature_round,
                SignatureRound.State.PROVIDER_SAYS_SIGNED,
                actor=actor,
                verb="round.provider_says_signed",
                action="mark it signed",
                reason="Every signer says they signed",
            )
            # The next move is the firm's: no "signature still missing" alerts meanwhile.
            notify.round_waiting_stopped(signature_round)
    return signer


def _close_round_and_submit(signature_round, to, *, actor, verb, action):
    now = timezone.now()
    for signer in signature_round.signers.exclude(state=Signer.State.SIGNED):
        _move(
            _lock(signer),
            Signer.State.SIGNED,
            actor=actor,
            verb="signer.signed",
            action="confirm the signature",
        )
    _move(signature_round, to, actor=actor, verb=verb, action=action, closed_at=now)
    notify.round_confirmed(signature_round)
    _round_closed(signature_round, actor=actor)
    enrollment = _lock(signature_round.enrollment)
    if enrollment.state == Enrollment.State.AWAITING_SIGNATURE:
        # A revision signed while a development request is open goes back into development.
        request = _open_development(enrollment)
        _move(
            enrollment,
            Enrollment.State.IN_DEVELOPMENT if request else Enrollment.State.SUBMITTED,
            actor=actor,
            verb="enrollment.state_changed",
            action="submit it",
            reason=f"Signature round {signature_round.number} complete",
            holder=request.holder if request else Holder.CMS,
            holder_reason=f"Development request {request.number}"
            if request
            else "With the contractor",
        )
    return signature_round


@transaction.atomic
@one_refresh
def round_confirm(*, signature_round: SignatureRound, actor: User) -> SignatureRound:
    """Staff saw every signature (electronic, or the uploaded statement) in PECOS: the
    application goes to the contractor."""
    signature_round = _lock(signature_round)
    moves.ensure(moves.ROUND_MOVES["confirm"], signature_round)
    return _close_round_and_submit(
        signature_round,
        SignatureRound.State.CONFIRMED,
        actor=actor,
        verb="round.confirmed",
        action="confirm the signature",
    )


@transaction.atomic
@one_refresh
def signer_confirm(*, signer: Signer, actor: User) -> Signer:
    """Staff saw this signer's signature in PECOS; the last one completes the round."""
    signature_round = _lock(signer.signature_round)
    signer = _lock(signer)
    moves.ensure(moves.SIGNER_CONFIRM, signer)
    if not signature_round.is_open:
        raise TransitionError(
            f"Can't confirm it: this round is {signature_round.get_state_display().lower()}."
        )
    signer = _move(
        signer,
        Signer.State.SIGNED,
        actor=actor,
        verb="signer.signed",
        action="confirm the signature",
    )
    notify.signer_waiting_stopped(signer)
    if not signature_round.signers.exclude(state=Signer.State.SIGNED).exists():
        _close_round_and_submit(
            signature_round,
            SignatureRound.State.CONFIRMED,
            actor=actor,
            verb="round.confirmed",
            action="confirm the signature",
        )
    return signer


@transaction.atomic
@one_refresh
def round_not_yet_signed(*, signature_round: SignatureRound, actor: User, reason: str = ""):
    """Staff could not see the signatures reported: back to the signers who said so."""
    signature_round = _lock(signature_round)
    moves.ensure(moves.ROUND_MOVES["not-yet"], signature_round)
    claimed = list(signature_round.signers.filter(state=Signer.State.SAYS_SIGNED))
    for signer in claimed:
        _move(
            _lock(signer),
            Signer.State.AWAITING,
            actor=actor,
            verb="signer.not_yet_signed",
            action="send it back",
            reason=reason or "Signature not visible yet",
        )
        notify.signer_waiting_again(signer)
    if signature_round.state == SignatureRound.State.PROVIDER_SAYS_SIGNED:
        signature_round = _move(
            signature_round,
            SignatureRound.State.AWAITING_SIGNATURE,
            actor=actor,
            verb="round.not_yet_signed",
            action="send it back to the provider",
            reason=reason or "Signature not visible yet",
        )
        notify.round_waiting_again(signature_round)
    return signature_round


@transaction.atomic
@one_refresh
def round_mark_mailed(*, signature_round: SignatureRound, actor: User) -> SignatureRound:
    """Staff know the signed statement is in the mail to the contractor."""
    signature_round = _lock(signature_round)
    moves.ensure(moves.ROUND_MOVES["mailed"], signature_round)
    signature_round = _move(
        signature_round,
        SignatureRound.State.MAILED,
        actor=actor,
        verb="round.mailed",
        action="record it mailed",
        mailed_at=timezone.now(),
    )
    for signer in signature_round.signers.filter(state=Signer.State.AWAITING):
        _move(
            _lock(signer),
            Signer.State.SAYS_SIGNED,
            actor=actor,
            verb="signer.says_signed",
            action="record it mailed",
            reason="Recorded mailed by staff",
        )
    notify.round_waiting_stopped(signature_round, keep_staff_alerts=True)
    return signature_round


@transaction.atomic
@one_refresh
def round_mark_received(*, signature_round: SignatureRound, actor: User) -> SignatureRound:
    signature_round = _lock(signature_round)
    return _close_round_and_submit(
        signature_round,
        SignatureRound.State.RECEIVED,
        actor=actor,
        verb="round.received",
        action="record the paper received",
    )


@transaction.atomic
@one_refresh
def round_cancel(*, signature_round: SignatureRound, actor: User, reason: str = ""):
    signature_round = _lock(signature_round)
    notify.round_waiting_stopped(signature_round)
    _move(
        signature_round,
        SignatureRound.State.CANCELLED,
        actor=actor,
        verb="round.cancelled",
        action="cancel it",
        reason=reason,
        closed_at=timezone.now(),
    )
    _round_closed(signature_round, actor=actor)
    enrollment = _lock(signature_round.enrollment)
    if enrollment.state == Enrollment.State.AWAITING_SIGNATURE:
        # Back where it was: preparing for a first signature; a revision's application is
        # still with the contractor, in development if a request is open.
        to, holder = Enrollment.State.PREPARING, Holder.FIRM
        if signature_round.is_revision:
            request = _open_development(enrollment)
            to, holder = (
                (Enrollment.State.IN_DEVELOPMENT, request.holder)
                if request
                else (Enrollment.State.SUBMITTED, Holder.CMS)
            )
        _move(
            enrollment,
            to,
            actor=actor,
            verb="enrollment.state_changed",
            action=f"return it to {Enrollment.State(to).label.lower()}",
            reason=f"Signature round {signature_round.number} cancelled",
            holder=holder,
            holder_reason="",
        )
    return signature_round


def _open_development(enrollment: Enrollment) -> DevelopmentRequest | None:
    """The open development request that decides who holds the application: one waiting
    on the provider first, else the soonest due."""
    return (
        enrollment.development_requests.filter(state__in=DevelopmentRequest.OPEN_STATES)
        .order_by("deadline")
        .first()
    )


# --- development requests -------------------------------------------------------------


@transaction.atomic
@one_refresh
def development_open(
    *,
    enrollment: Enrollment,
    actor: User,
    asked: str,
    holder: str,
    letter_on: date | None = None,
    due_on: date | None = None,
) -> DevelopmentRequest:
    """The contractor's letter (dated `letter_on`) asks for more information: the response
    is due on `due_on` (the letter's own date, or the firm's default after the letter). The
    application goes into development; the provider gets a to-do when they must act."""
    enrollment = _lock(enrollment)
    firm = enrollment.firm
    asked = asked.strip()
    if not asked:
        raise TransitionError("Say what the contractor asks for: whoever answers sees it.")
    if holder not in (Holder.FIRM, Holder.PROVIDER):
        raise TransitionError("Choose who must act: the firm or the provider.")
    if enrollment.state not in Enrollment.DEVELOPMENT_STATES:
        raise TransitionError(
            "A development request follows a submission; this enrollment is "
            f"{enrollment.get_state_display().lower()}."
        )
    letter = _cms_day(firm, letter_on, what="of the letter")
    letter_moment = _on_day(firm, letter)
    due = due_on or development_due_on(firm, letter)
    if due < letter:
        raise TransitionError("The response due date is before the letter's date.")
    if due < timezone.now().astimezone(firm.zone).date():
        raise TransitionError(
            "That response date has passed: the contractor rejects an application whose "
            "development request is not answered in time. Record the outcome instead."
        )
    number = (enrollment.development_requests.aggregate(n=Max("number"))["n"] or 0) + 1
    request = DevelopmentRequest.objects.create(
        firm=firm,
        enrollment=enrollment,
        number=number,
        letter_on=letter,
        asked=asked,
        due_on=due,
        deadline=end_of_day(firm, due),
        holder=holder,
    )
    request.enrollment = enrollment
    _record(
        "development.opened",
        request,
        actor=actor,
        data={
            "to": request.state,
            "number": number,
            "cms_date": letter.isoformat(),
            "due_on": due.isoformat(),
            "holder": holder,
        },
    )
    if enrollment.state == Enrollment.State.SUBMITTED:
        _move(
            enrollment,
            Enrollment.State.IN_DEVELOPMENT,
            actor=actor,
            verb="enrollment.state_changed",
            action="record development",
            reason=f"Development request {number}",
            cms_date=letter,
            state_entered_at=letter_moment,
            holder=holder,
            holder_reason=f"Development request {number}",
        )
    _hold_for_development(enrollment)
    notify.development_opened(request)
    return request


def _hold_for_development(enrollment: Enrollment) -> None:
    """In development, the application waits on the provider while a request of theirs is
    open and not yet reported done; otherwise on the firm."""
    enrollment = _lock(enrollment)
    if enrollment.state != Enrollment.State.IN_DEVELOPMENT:
        return
    theirs = enrollment.development_requests.filter(
        state=DevelopmentRequest.State.OPEN, holder=Holder.PROVIDER
    ).exists()
    holder = Holder.PROVIDER if theirs else Holder.FIRM
    if enrollment.holder != holder:
        Enrollment.objects.filter(pk=enrollment.pk).update(holder=holder)


def _development_done(
    request: DevelopmentRequest, *, actor: User, because: str, on: date | None = None
) -> None:
    """After a request closes: when none is left open, the application is back with the
    contractor."""
    enrollment = _lock(request.enrollment)
    still_open = enrollment.development_requests.filter(
        state__in=DevelopmentRequest.OPEN_STATES
    ).exists()
    if enrollment.state == Enrollment.State.IN_DEVELOPMENT and not still_open:
        _move(
            enrollment,
            Enrollment.State.SUBMITTED,
            actor=actor,
            verb="enrollment.state_changed",
            action="return it to the contractor",
            reason=because,
            cms_date=on,
            holder=Holder.CMS,
            holder_reason="With the contractor",
            **({"state_entered_at": _on_day(request.firm, on)} if on else {}),
        )
    else:
        _hold_for_development(enrollment)


@transaction.atomic
@one_refresh
def development_claim_done(
    *, request: DevelopmentRequest, party: Party, actor: User
) -> DevelopmentRequest:
    """The provider (or a delegate allowed to) says they gave what was asked: staff check
    it and send the response."""
    request = _lock(request)
    _ensure_may(party, Step.ANSWER_DEVELOPMENT, request.enrollment.profile)
    if request.holder != Holder.PROVIDER:
        raise TransitionError("The firm answers this request; nothing is needed from you.")
    if request.state == DevelopmentRequest.State.PROVIDER_SAYS_DONE:
        raise TransitionError("You already told us this is done; we are checking it.")
    request = _move(
        request,
        DevelopmentRequest.State.PROVIDER_SAYS_DONE,
        actor=actor,
        verb="development.provider_says_done",
        action="mark it done",
        reason=f"{party.name} says it is done",
    )
    notify.development_claimed(request, party)
    _hold_for_development(request.enrollment)
    return request


@transaction.atomic
@one_refresh
def development_not_yet_done(
    *, request: DevelopmentRequest, actor: User, reason: str = ""
) -> DevelopmentRequest:
    """Staff did not get what the provider reported: back to the provider."""
    request = _lock(request)
    moves.ensure(moves.DEVELOPMENT_MOVES["not-yet"], request)
    request = _move(
        request,
        DevelopmentRequest.State.OPEN,
        actor=actor,
        verb="development.not_yet_done",
        action="send it back to the provider",
        reason=reason or "Not received yet",
    )
    notify.development_waiting_again(request)
    _hold_for_development(request.enrollment)
    return request


@transaction.atomic
@one_refresh
def development_record_answered(
    *, request: DevelopmentRequest, actor: User, responded_on: date | None = None
) -> DevelopmentRequest:
    """The response went to the contractor (on `responded_on`): the clock stops."""
    request = _lock(request)
    day = _cms_day(request.firm, responded_on, what="of the response", starts_clock=False)
    if day < request.letter_on:
        raise TransitionError("The response date is before the letter's date.")
    request = _move(
        request,
        DevelopmentRequest.State.ANSWERED,
        actor=actor,
        verb="development.answered",
        action="record the response",
        cms_date=day,
        responded_on=day,
    )
    notify.development_waiting_stopped(request)
    _development_done(
        request,
        actor=actor,
        because=f"Development request {request.number} answered",
        on=day,
    )
    return request


@transaction.atomic
@one_refresh
def development_cancel(
    *, request: DevelopmentRequest, actor: User, reason: str = ""
) -> DevelopmentRequest:
    """Recorded by mistake, or the contractor withdrew it."""
    request = _lock(request)
    request = _move(
        request,
        DevelopmentRequest.State.CANCELLED,
        actor=actor,
        verb="development.cancelled",
        action="cancel it",
        reason=reason,
    )
    notify.development_waiting_stopped(request)
    _development_done(
        request, actor=actor, because=f"Development request {request.number} cancelled"
    )
    return request


# --- undo: "I've done this" pressed by mistake ------------------------------------------


def _ensure_undoable(obj, claimed_state: str) -> None:
    if obj.state != claimed_state:
        raise TransitionError("Nothing to undo: this step is not marked done.")
    if timezone.now() - obj.state_entered_at > UNDO_WINDOW:
        raise TransitionError(
            "It is too late to undo this here: tell your credentialer, they will check it."
        )


@transaction.atomic
@one_refresh
def grant_undo_claim(*, grant: AccessGrant, party: Party, actor: User) -> AccessGrant:
    grant = _lock(grant)
    _ensure_may(party, grant_step(grant), grant.profile, grant.requested_role)
    _ensure_undoable(grant, AccessGrant.State.PROVIDER_SAYS_DONE)
    grant = _move(
        grant,
        AccessGrant.State.AWAITING_PROVIDER,
        actor=actor,
        verb="grant.claim_undone",
        action="undo it",
        reason=f"{party.name} undid “I've done this”",
    )
    notify.claim_undone(grant, kinds=["grant.verify"])
    notify.grant_waiting_again(grant)
    return grant


@transaction.atomic
@one_refresh
def signer_undo_claim(*, signer: Signer, party: Party, actor: User) -> Signer:
    signature_round = _lock(signer.signature_round)
    signer = _lock(signer)
    if not may_sign(party, signer):
        raise NotAllowed(signer_refusal(signer))
    _ensure_undoable(signer, Signer.State.SAYS_SIGNED)
    signer = _move(
        signer,
        Signer.State.AWAITING,
        actor=actor,
        verb="signer.claim_undone",
        action="undo it",
        reason=f"{party.name} undid “I've signed”",
    )
    if signature_round.state in (
        SignatureRound.State.PROVIDER_SAYS_SIGNED,
        SignatureRound.State.MAILED,
    ):
        _move(
            signature_round,
            SignatureRound.State.AWAITING_SIGNATURE,
            actor=actor,
            verb="round.claim_undone",
            action="undo it",
            reason=f"{party.name} undid “I've signed”",
            mailed_at=None,
        )
        notify.round_waiting_again(signature_round)
    notify.claim_undone(signature_round, kinds=["round.verify"])
    notify.signer_waiting_again(signer)
    return signer


@transaction.atomic
@one_refresh
def development_undo_claim(
    *, request: DevelopmentRequest, party: Party, actor: User
) -> DevelopmentRequest:
    request = _lock(request)
    _ensure_may(party, Step.ANSWER_DEVELOPMENT, request.enrollment.profile)
    _ensure_undoable(request, DevelopmentRequest.State.PROVIDER_SAYS_DONE)
    request = _move(
        request,
        DevelopmentRequest.State.OPEN,
        actor=actor,
        verb="development.claim_undone",
        action="undo it",
        reason=f"{party.name} undid “I've done this”",
    )
    notify.claim_undone(request, kinds=["development.verify"])
    notify.development_waiting_again(request)
    _hold_for_development(request.enrollment)
    return request


# --- the provider's own I&A login -----------------------------------------------------


def _individual_profile(client: Client) -> Profile:
    return client.profiles.get(kind=Profile.Kind.INDIVIDUAL)


@transaction.atomic
@one_refresh
def ia_regain_claim(*, client: Client, party: Party, actor: User) -> Client:
    """The provider says they control their I&A login again: staff check it next."""
    _ensure_may(party, Step.REGAIN_CONTROL, _individual_profile(client))
    try:
        client = client_services.ia_regain_claim(client=client, actor=actor)
    except DomainError as exc:
        raise TransitionError(exc.message) from None
    notify.ia_regain_claimed(client, party)
    return client


@transaction.atomic
@one_refresh
def ia_password_reset_done(*, client: Client, party: Party, actor: User) -> Client:
    _ensure_may(party, Step.RESET_PASSWORD, _individual_profile(client))
    try:
        return client_services.ia_password_reset_done(client=client, actor=actor)
    except DomainError as exc:
        raise TransitionError(exc.message) from None


# --- people leaving -------------------------------------------------------------------


@transaction.atomic
@one_refresh
def member_caseload_release(*, firm: Firm, user: User, actor: User) -> int:
    """A member was deactivated: nothing more about the firm's clients goes to them.

    1. Their clients and enrollments become unassigned, so every later message about them
       goes to the firm's admins (`notify.staff_side`) until an admin assigns someone.
    2. Messages already waiting in the outbox for them are cancelled.
    Returns how many clients were theirs.
    """
    # Parent rows first, each kind in id order (`_lock`, `lock_in_order`): no deadlock with
    # a transition, the expiry scan or the reconcile running meanwhile.
    enrollments = Enrollment.objects.filter(firm=firm, assigned_staff=user)
    lock_in_order(enrollments)
    clients = Client.objects.filter(firm=firm, assigned_staff=user)
    lock_in_order(clients)
    count = clients.update(assigned_staff=None)
    enrollments.update(assigned_staff=None)
    OpenStep.objects.filter(firm=firm, assignee=user).update(assignee=None)
    cancelled = outbox.cancel_to_person(firm_id=firm.pk, user_id=user.pk)
    audit.record(
        "caseload.released",
        actor=actor,
        firm=firm,
        target=user,
        target_label=user.email,
        data={"clients": count, "messages_cancelled": cancelled},
    )
    return count
