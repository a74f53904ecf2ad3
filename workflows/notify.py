"""What each workflow change tells whom, and when: the cadences are domain rules.

Called by the transitions in `services.py`, inside their transaction; hands ready messages
with due times and idempotency keys to `notifications.outbox`, which stores and delivers
them. Reminders go out at the firm's civil hour in its time zone, never at 3 a.m.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Delegate, Official
from notifications.bounces import address_bounced, address_in_use
from notifications.outbox import Message, cancel, reopen, schedule
from portal.models import FIRM_ROLES, Membership, Role, User, normalize_email, parse_day_list

from . import steps
from .deadlines import days_left, end_of_day
from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    SignatureRound,
    Signer,
)
from .rules import Party, Step, grant_step, may_do

GRANT_REMINDER_KINDS = ["grant.reminder", "grant.staff_alert"]
ROUND_STAFF_KINDS = ["round.staff_alert", "round.overdue"]


def civil_moment(firm, start: datetime, days: int) -> datetime:
    """`days` after `start`, at the firm's reminder hour, in the firm's time zone."""
    local_day = start.astimezone(firm.zone).date() + timedelta(days=days)
    moment = datetime.combine(local_day, time(hour=firm.reminder_hour), tzinfo=firm.zone)
    return max(moment, start)


def civil_before(firm, deadline: datetime, days: int) -> datetime:
    """`days` before the deadline's day, at the firm's reminder hour, in its time zone."""
    local_day = deadline.astimezone(firm.zone).date() - timedelta(days=days)
    return datetime.combine(local_day, time(hour=firm.reminder_hour), tzinfo=firm.zone)


def _long_date(firm, moment: datetime) -> str:
    return f"{moment.astimezone(firm.zone):%A, %B %-d}"


# --- who ------------------------------------------------------------------------------


def _client_with_people(client_id: int) -> Client:
    return (
        Client.objects.select_related("firm", "user", "assigned_staff")
        .prefetch_related("delegates__roles", "delegates__user")
        .get(pk=client_id)
    )


def provider_side(client: Client, step: Step, profile, requested_role: str = ""):
    """(user or None, email, name) for the provider and each active delegate allowed to act."""
    people = [(client.user, client.email, client.first_name)]
    for delegate in client.delegates.all():
        if not delegate.is_active:
            continue
        party = Party(
            name=delegate.name,
            is_provider=False,
            roles={role.profile_id: role.cms_role for role in delegate.roles.all()},
        )
        if may_do(party, step, profile, requested_role):
            people.append((delegate.user, delegate.email, delegate.name))
    return people


def firm_admins(firm_ids) -> dict[int, list[User]]:
    """The active admins of these firms, by firm (one query)."""
    admins: dict[int, list[User]] = {}
    for membership in (
        Membership.objects.filter(firm__in=firm_ids, role=Role.ADMIN, is_active=True)
        .select_related("user")
        .order_by("pk")
    ):
        admins.setdefault(membership.firm_id, []).append(membership.user)
    return admins


def staff_side(client: Client, admins: dict[int, list[User]] | None = None) -> list[User]:
    """The assigned staff member, or the firm's admins when nobody is assigned (`admins`:
    already read with `firm_admins`, for messages built in bulk)."""
    if client.assigned_staff_id:
        return [client.assigned_staff]
    if admins is None:
        admins = firm_admins([client.firm_id])
    return admins.get(client.firm_id, [])


def _message(client, obj, *, kind, step, due, to, context, essential=True, link=None):
    """A message to one person; to the provider's side (no `link` of its own: their to-do
    list), its email signs them in with one tap."""
    user, email, name = to
    return Message(
        sign_in=link is None,
        firm=client.firm,
        kind=kind,
        subject_type=type(obj).__name__.lower(),
        subject_id=str(obj.public_id),
        step=step,
        due_at=due,
        template="notification",
        to_email=email or (user.email if user else ""),
        recipient=user,
        essential=essential,
        link_path=link or reverse("dashboard"),
        context={"name": name, **context},
    )


def _staff_message(client, obj, *, kind, step, due, context, admins=None):
    link = reverse("client_detail", args=[client.public_id])
    return [
        _message(
            client,
            obj,
            kind=kind,
            step=step,
            due=due,
            to=(user, user.email, user.display_name),
            context=context,
            link=link,
        )
        for user in staff_side(client, admins)
    ]


# --- access grants --------------------------------------------------------------------


# What the provider is asked to do, by access method: (first message, reminders).
GRANT_ASK = {
    AccessGrant.Method.CONNECTION_REQUEST: (
        "Please approve your credentialer's access request",
        "Reminder: approve your credentialer's access request",
    ),
    AccessGrant.Method.ADD_STAFF: (
        "Please add your credentialer as staff in CMS",
        "Reminder: add your credentialer as staff in CMS",
    ),
    AccessGrant.Method.ADD_SURROGATE: (
        "Please add your credentialer as your surrogate in CMS",
        "Reminder: add your credentialer as your surrogate in CMS",
    ),
}


def _grant_context(grant: AccessGrant, client: Client, *, headline: str, lines: list[str]):
    step = steps.for_grant(grant, firm=client.firm, assigned_staff=client.assigned_staff)
    return {
        "subject": headline,
        "headline": headline,
        "lines": lines,
        "steps": step,
        "notes": steps.access_facts(firm_name=client.firm.name),
        "profile": grant.profile.label,
        "deadline": grant.deadline,
    }


def grant_sent(grant: AccessGrant) -> None:
    """The provider at once, then reminders while pending; staff alerts late in the month."""
    client = _client_with_people(grant.profile.client_id)
    firm = client.firm
    now = timezone.now()
    step = grant_step(grant)
    sent = grant.sent_at
    expires = (
        f" It expires on {grant.deadline.astimezone(firm.zone):%A, %B %-d}: CMS rejects it "
        "automatically after that."
        if grant.deadline
        else ""
    )
    first_lines = (
        [
            f"{firm.name} sent an access request for your {grant.profile.in_sentence}.",
            "CMS may not email you about it, so please approve it in the CMS Identity & Access "
            "system yourself." + expires,
        ]
        if grant.method == AccessGrant.Method.CONNECTION_REQUEST
        else [f"{firm.name} needs access to your {grant.profile.in_sentence}: here is how."]
    )
    messages = [
        _message(
            client,
            grant,
            kind="grant.requested",
            step="sent",
            due=sent,
            to=person,
            context=_grant_context(
                grant,
                client,
                headline=GRANT_ASK[grant.method][0],
                lines=first_lines,
            ),
        )
        for person in provider_side(client, step, grant.profile, grant.requested_role)
    ]
    for day in parse_day_list(firm.grant_reminder_days):
        due = civil_moment(firm, sent, day)
        if (grant.deadline and due >= grant.deadline) or due < now:
            continue  # after the deadline, or already past when recorded late
        left = days_left(firm, grant.deadline, due) if grant.deadline else None
        lines = [
            (
                f"The access request for your {grant.profile.in_sentence} is still waiting."
                if grant.method == AccessGrant.Method.CONNECTION_REQUEST
                else f"Giving {firm.name} access to your {grant.profile.in_sentence} is to do."
            )
            + (
                f" {left} day{'s' if left != 1 else ''} left before CMS rejects it."
                if left is not None
                else ""
            )
        ]
        messages += [
            _message(
                client,
                grant,
                kind="grant.reminder",
                step=f"day-{day}",
                due=due,
                to=person,
                context=_grant_context(
                    grant,
                    client,
                    headline=GRANT_ASK[grant.method][1],
                    lines=lines,
                ),
            )
            for person in provider_side(client, step, grant.profile, grant.requested_role)
        ]
    for day in parse_day_list(firm.grant_staff_alert_days):
        due = civil_moment(firm, sent, day)
        if (grant.deadline and due >= grant.deadline) or due < now:
            continue  # after the deadline, or already past when recorded late
        messages += _staff_message(
            client,
            grant,
            kind="grant.staff_alert",
            step=f"day-{day}",
            due=due,
            context={
                "subject": (
                    f"{client.display_name}: {grant.profile.label} access still pending "
                    f"after {day} days"
                ),
                "headline": f"{client.display_name} has not approved the request yet",
                "lines": [
                    f"The request for the {grant.profile.in_sentence} was sent {day} days ago"
                    + (
                        f" and expires on {grant.deadline.astimezone(firm.zone):%B %-d}."
                        if grant.deadline
                        else "."
                    ),
                    "Call the provider and walk them through My Pending Connections.",
                ],
            },
        )
    schedule(messages)


def claim_undone(obj, *, kinds: list[str]) -> None:
    """ "I've done this" was taken back: a check the staff side has not been sent yet is
    not sent (one already sent stands: the timeline says it was undone)."""
    cancel(subject_type=type(obj).__name__.lower(), subject_ids=[str(obj.public_id)], kinds=kinds)


def grant_waiting_stopped(grant: AccessGrant) -> None:
    """The provider acted or the request closed: no more reminders about it."""
    cancel(
        subject_type="accessgrant", subject_ids=[str(grant.public_id)], kinds=GRANT_REMINDER_KINDS
    )


def grant_waiting_again(grant: AccessGrant) -> None:
    reopen(subject_type="accessgrant", subject_id=str(grant.public_id), kinds=GRANT_REMINDER_KINDS)


def grant_claimed(grant: AccessGrant, party: Party) -> None:
    """The provider says it is done: the assigned staff member verifies, at once."""
    grant_waiting_stopped(grant)
    client = _client_with_people(grant.profile.client_id)
    schedule(
        _staff_message(
            client,
            grant,
            kind="grant.verify",
            step=f"claim-{timezone.now():%Y%m%d%H%M%S}",
            due=timezone.now(),
            context={
                "subject": f"Verify: {client.display_name} says access is granted",
                "headline": f"{party.name} says the access request is approved",
                "lines": [
                    f"Profile: {grant.profile.label}. Check PECOS and mark it active, or send it "
                    "back to the provider if you can't see it yet."
                ],
            },
        )
    )


def grant_firm_not_found(grant: AccessGrant, party: Party) -> None:
    """The provider can't find the firm in I&A to add it as surrogate: staff send a
    connection request instead (the seed's fallback)."""
    client = _client_with_people(grant.profile.client_id)
    firm = client.firm
    schedule(
        _staff_message(
            client,
            grant,
            kind="grant.firm_not_found",
            step=f"not-found-{timezone.now():%Y%m%d%H%M%S}",
            due=timezone.now(),
            context={
                "subject": f"{client.display_name} can't find {firm.name_in_ia} in I&A",
                "headline": f"{party.name} can't find you to add as surrogate",
                "lines": [
                    f"Profile: {grant.profile.label}. Cancel this step and send a connection "
                    "request instead; check that the name in your settings is exactly the "
                    f"one registered in I&A (now “{firm.name_in_ia}”).",
                ],
            },
        )
    )


def grant_active(grant: AccessGrant) -> None:
    grant_waiting_stopped(grant)
    client = _client_with_people(grant.profile.client_id)
    schedule(
        [
            _message(
                client,
                grant,
                kind="grant.active",
                step="active",
                due=timezone.now(),
                to=(client.user, client.email, client.first_name),
                essential=False,
                context={
                    "subject": "Your credentialer's access is active",
                    "headline": "Access confirmed",
                    "lines": [
                        f"{client.firm.name} can now work on your "
                        f"{grant.profile.in_sentence} in PECOS. Nothing else is needed from "
                        "you for this step."
                    ],
                },
            )
        ]
    )


def grants_expired(grants: list[AccessGrant]) -> None:
    """Told plainly to the provider; the assigned staff get a "send again" action."""
    if not grants:
        return
    cancel(
        subject_type="accessgrant",
        subject_ids=[str(g.public_id) for g in grants],
        kinds=GRANT_REMINDER_KINDS,
    )
    clients = {
        client.pk: client
        for client in Client.objects.filter(
            pk__in={g.profile.client_id for g in grants}
        ).select_related("firm", "user", "assigned_staff")
    }
    admins = firm_admins({c.firm_id for c in clients.values() if not c.assigned_staff_id})
    messages = []
    now = timezone.now()
    for grant in grants:
        client = clients[grant.profile.client_id]
        messages.append(
            _message(
                client,
                grant,
                kind="grant.expired",
                step="expired",
                due=now,
                to=(client.user, client.email, client.first_name),
                context={
                    "subject": "Your credentialer's access request expired",
                    "headline": "The access request expired",
                    "lines": [
                        f"The request for your {grant.profile.in_sentence} was not approved "
                        f"within {client.firm.grant_expiry_days} days, so CMS rejected it "
                        "automatically.",
                        f"{client.firm.name} will send a new one; please approve it as soon "
                        "as it arrives.",
                    ],
                },
            )
        )
        messages += _staff_message(
            client,
            grant,
            kind="grant.expired_staff",
            step="expired",
            due=now,
            context={
                "subject": f"{client.display_name}: access request expired, send it again",
                "headline": "An access request expired",
                "lines": [
                    f"The request for {grant.profile.label} was not approved in time.",
                    "Open the client and use “Send again”.",
                ],
            },
            admins=admins,
        )
    schedule(messages)


# --- signature rounds -----------------------------------------------------------------


def _round_context(
    signature_round: SignatureRound, signer: Signer, *, headline: str, lines: list[str]
):
    profile = signature_round.enrollment.profile
    return {
        "subject": headline,
        "headline": headline,
        "lines": lines,
        "steps": steps.sign_for(signature_round.method, pecos_email=signer.pecos_email),
        "notes": steps.SIGNING_FACTS,
        # An official signing someone else's application reads whose it is.
        "profile": profile.label
        if signer.is_provider
        else f"{profile.client.display_name}, {profile.label}",
        "deadline": signature_round.deadline,
    }


# The first line of a signer's "ready to sign" message, by signature method.
ROUND_INTRO = {
    SignatureRound.Method.ELECTRONIC: "CMS will email you asking for your signature, maybe "
    "before we call. It is genuine: here is how to sign.",
    SignatureRound.Method.UPLOAD: "We sent you the certification statement to sign in ink; "
    "the signed page is uploaded in PECOS. CMS counts 20 days from submission.",
    SignatureRound.Method.PAPER: "We sent you the certification statement to sign in ink "
    "and post to the Medicare contractor (not to us). CMS counts 20 days from submission "
    "and the post is slow: please sign and post it today.",
}
SIGNER_REMINDER_KINDS = ["round.reminder"]


def signer_person(signer: Signer, client: Client):
    """(user or None, email, name) of the person who signs: the provider, the delegate
    recorded as the official, or an official known by name and email only."""
    if signer.is_provider:
        return client.user, client.email, client.first_name
    official = signer.official
    delegate = official.delegate if official else None
    if delegate is not None and delegate.is_active:
        return delegate.user, delegate.email, delegate.name
    return None, signer.pecos_email, signer.name


def _signing_as(signer: Signer, profile) -> list[str]:
    """Who they sign as, when it is not their own individual application."""
    if signer.role == Signer.Role.PROVIDER and profile.is_individual:
        return []
    organization = signer.official.organization if signer.official else profile.organization
    as_what = (
        "as the provider reassigning your benefits"
        if signer.role == Signer.Role.PROVIDER
        else f"as {signer.get_role_display()} of {organization.legal_name}"
    )
    return [f"You sign {as_what}."]


def round_opened(signature_round: SignatureRound) -> None:
    profile = signature_round.enrollment.profile
    client = _client_with_people(profile.client_id)
    firm = client.firm
    now = timezone.now()
    opened = signature_round.opened_at
    why = (
        [
            f"This is signature round {signature_round.number}: {signature_round.reason}. Every "
            "revision after submission needs a new signature; this is normal."
        ]
        if signature_round.is_revision
        else []
    )
    messages = []
    signers = list(
        signature_round.signers.select_related("official__organization", "official__delegate__user")
    )
    for signer in signers:
        person = signer_person(signer, client)
        intro = [ROUND_INTRO[signature_round.method], *_signing_as(signer, profile)]
        messages.append(
            _message(
                client,
                signer,
                kind="round.opened",
                step="opened",
                due=opened,
                to=person,
                context=_round_context(
                    signature_round,
                    signer,
                    headline="Your application is ready to sign",
                    lines=intro + why,
                ),
            )
        )
        # Every method has the same 20 days (CMS): reminders, staff alerts and the deadline
        # alert run for electronic, uploaded and mailed signatures alike.
        for day in parse_day_list(firm.round_reminder_days):
            due = civil_moment(firm, opened, day)
            if due >= signature_round.deadline or due < now:
                continue  # after the deadline, or already past when recorded late
            messages.append(
                _message(
                    client,
                    signer,
                    kind="round.reminder",
                    step=f"day-{day}",
                    due=due,
                    to=person,
                    context=_round_context(
                        signature_round,
                        signer,
                        headline="Reminder: your application is waiting for your signature",
                        lines=[
                            "Please sign by "
                            f"{_long_date(firm, signature_round.deadline)}: CMS rejects "
                            "applications whose signature has not arrived by then.",
                            *_signing_as(signer, profile),
                        ]
                        + why,
                    ),
                )
            )
    names = ", ".join(signer.name for signer in signers)
    for day in parse_day_list(firm.round_staff_alert_days):
        due = civil_moment(firm, opened, day)
        if due >= signature_round.deadline or due < now:
            continue  # after the deadline, or already past when recorded late
        messages += _staff_message(
            client,
            signature_round,
            kind="round.staff_alert",
            step=f"day-{day}",
            due=due,
            context={
                "subject": f"{client.display_name}: round {signature_round.number} "
                f"unsigned after {day} days",
                "headline": "A signature is still missing",
                "lines": [
                    f"Round {signature_round.number} for {profile.label} "
                    f"({signature_round.get_method_display()}; signers: {names}) is "
                    f"due on {signature_round.deadline.astimezone(firm.zone):%B %-d}."
                ],
            },
        )
    messages += _staff_message(
        client,
        signature_round,
        kind="round.overdue",
        step="deadline",
        due=signature_round.deadline,
        context={
            "subject": f"{client.display_name}: round {signature_round.number} passed "
            "its signature deadline",
            "headline": "A signature round passed its deadline",
            "lines": [
                f"Round {signature_round.number} for {profile.label} is still not confirmed. "
                "CMS rejects an application whose signature has not arrived within "
                f"{firm.signature_deadline_days} days: check PECOS and the contractor today."
            ],
        },
    )
    schedule(messages)


def _signer_ids(signature_round: SignatureRound) -> list[str]:
    return [str(pk) for pk in signature_round.signers.values_list("public_id", flat=True)]


def round_waiting_stopped(
    signature_round: SignatureRound, *, keep_staff_alerts: bool = False
) -> None:
    """Stop the signers' reminders; a statement in the mail keeps its staff alerts: the
    contractor must still receive it within the 20 days."""
    cancel(
        subject_type="signer", subject_ids=_signer_ids(signature_round), kinds=SIGNER_REMINDER_KINDS
    )
    _legacy_reminders(signature_round, stop=True)
    if not keep_staff_alerts:
        cancel(
            subject_type="signatureround",
            subject_ids=[str(signature_round.public_id)],
            kinds=ROUND_STAFF_KINDS,
        )


def round_waiting_again(signature_round: SignatureRound) -> None:
    reopen(
        subject_type="signatureround",
        subject_id=str(signature_round.public_id),
        kinds=ROUND_STAFF_KINDS,
    )


def _legacy_reminders(signature_round: SignatureRound, *, stop: bool) -> None:
    """Rounds opened before they had signers have their reminders (to the provider and
    the delegates who could sign) filed against the round itself."""
    if stop:
        cancel(
            subject_type="signatureround",
            subject_ids=[str(signature_round.public_id)],
            kinds=SIGNER_REMINDER_KINDS,
        )
    else:
        reopen(
            subject_type="signatureround",
            subject_id=str(signature_round.public_id),
            kinds=SIGNER_REMINDER_KINDS,
        )


def signer_waiting_stopped(signer: Signer) -> None:
    cancel(subject_type="signer", subject_ids=[str(signer.public_id)], kinds=SIGNER_REMINDER_KINDS)
    if signer.is_provider:
        _legacy_reminders(signer.signature_round, stop=True)


def signer_waiting_again(signer: Signer) -> None:
    reopen(subject_type="signer", subject_id=str(signer.public_id), kinds=SIGNER_REMINDER_KINDS)
    if signer.is_provider:
        _legacy_reminders(signer.signature_round, stop=False)


def signer_claimed(signer: Signer, party: Party) -> None:
    """One signer says they signed: their reminders stop; staff verify it in PECOS."""
    signer_waiting_stopped(signer)
    signature_round = signer.signature_round
    client = _client_with_people(signature_round.enrollment.profile.client_id)
    schedule(
        _staff_message(
            client,
            signature_round,
            kind="round.verify",
            step=f"claim-{signer.pk}-{timezone.now():%Y%m%d%H%M%S}",
            due=timezone.now(),
            context={
                "subject": f"Verify: {client.display_name}, round {signature_round.number}: "
                f"{signer.name} says they signed",
                "headline": f"{signer.name} says round {signature_round.number} is signed",
                "lines": [
                    f"They sign as {signer.get_role_display()}. "
                    + (
                        "Check the signature in PECOS and confirm it, or send it back."
                        if not signature_round.is_mailed_method
                        else "They say the signed statement is in the mail to the "
                        "contractor: record it received when the contractor has it."
                    )
                ],
            },
        )
    )


def round_confirmed(signature_round: SignatureRound) -> None:
    round_waiting_stopped(signature_round)
    client = _client_with_people(signature_round.enrollment.profile.client_id)
    schedule(
        [
            _message(
                client,
                signature_round,
                kind="round.signed",
                step="signed",
                due=timezone.now(),
                to=(client.user, client.email, client.first_name),
                essential=False,
                context={
                    "subject": "Signature received: thank you",
                    "headline": "We have your signature",
                    "lines": [
                        f"Round {signature_round.number} is signed and the application is "
                        "with the contractor."
                    ],
                },
            )
        ]
    )


# --- outcomes -------------------------------------------------------------------------

# Days before a reconsideration window closes that the staff side is alerted (and on the
# day): a request takes time to prepare and the provider (or their Authorized Official)
# signs it, so the first alert comes a month ahead.
RECONSIDERATION_ALERT_DAYS_BEFORE = (30, 14, 7, 2)
RECONSIDERATION_KINDS = ["reconsideration.staff_alert", "reconsideration.last_day"]


@dataclass(frozen=True)
class Told:
    """What the provider reads about an outcome."""

    kind: str
    headline: str
    lines: list[str]


def _outcome_told(enrollment: Enrollment, firm) -> Told | None:
    """The provider's message for this outcome; None: nothing to tell."""
    what = f"{enrollment.get_kind_display().lower()} for your {enrollment.profile.in_sentence}"
    reason = [f"The contractor's reason: {enrollment.outcome_reason}."] * bool(
        enrollment.outcome_reason
    )
    match enrollment.state:
        case Enrollment.State.APPROVED:
            return Told(
                kind="enrollment.approved",
                headline="Your Medicare enrollment is approved",
                lines=[
                    f"The {what} was approved. Your effective date is "
                    f"{enrollment.effective_date:%B %-d, %Y}.",
                    f"{firm.name} keeps track of what comes next (revalidation, changes).",
                ],
            )
        case Enrollment.State.DENIED:
            window = (
                [
                    "You may ask for reconsideration until "
                    f"{_long_date(firm, enrollment.reconsideration_deadline)}. {firm.name} "
                    "will contact you about it."
                ]
                if enrollment.reconsideration_window_open
                else []
            )
            return Told(
                kind="enrollment.denied",
                headline="Your Medicare application was denied",
                lines=[f"The contractor denied the {what}.", *reason, *window],
            )
        case Enrollment.State.REJECTED:
            return Told(
                kind="enrollment.rejected",
                headline="Your Medicare application needs to be resubmitted",
                lines=[
                    f"The contractor rejected the {what}.",
                    *reason,
                    f"{firm.name} will correct it and submit it again; you will be asked to "
                    "sign the corrected application.",
                ],
            )
        case Enrollment.State.RETURNED:
            return Told(
                kind="enrollment.returned",
                headline="Your Medicare application was returned",
                lines=[
                    f"The contractor returned the {what} without processing it.",
                    *reason,
                    f"{firm.name} will prepare a new application and tell you what is needed.",
                ],
            )
    return None  # withdrawn: the firm and the provider decided it together


def enrollment_outcome(enrollment: Enrollment) -> None:
    """The provider hears the outcome; a denial's reconsideration window alerts the staff
    side before it closes."""
    client = _client_with_people(enrollment.profile.client_id)
    firm = client.firm
    now = timezone.now()
    messages = []
    told = _outcome_told(enrollment, firm)
    if told:
        messages.append(
            _message(
                client,
                enrollment,
                kind=told.kind,
                step=f"outcome-{enrollment.decided_on:%Y%m%d}",
                due=now,
                to=(client.user, client.email, client.first_name),
                context={
                    "subject": told.headline,
                    "headline": told.headline,
                    "lines": told.lines,
                    "profile": enrollment.profile.label,
                },
            )
        )
    deadline = enrollment.reconsideration_deadline
    if enrollment.reconsideration_window_open and deadline:
        profile = enrollment.profile
        for days in RECONSIDERATION_ALERT_DAYS_BEFORE:
            due = civil_before(firm, deadline, days)
            if due < now:
                continue
            messages += _staff_message(
                client,
                enrollment,
                kind="reconsideration.staff_alert",
                step=f"before-{days}",
                due=due,
                context={
                    "subject": f"{client.display_name}: reconsideration window closes in "
                    f"{days} days",
                    "headline": "A denial's reconsideration window is closing",
                    "lines": [
                        f"The {enrollment.get_kind_display().lower()} for {profile.label} was "
                        f"denied on {enrollment.decided_on:%B %-d}. Reconsideration may be "
                        f"requested until {_long_date(firm, deadline)}.",
                        "File the request, or record that it is not requested.",
                    ],
                },
            )
        messages += _staff_message(
            client,
            enrollment,
            kind="reconsideration.last_day",
            step="last-day",
            due=max(civil_before(firm, deadline, 0), now),
            context={
                "subject": f"{client.display_name}: last day to request reconsideration",
                "headline": "Today is the last day to request reconsideration",
                "lines": [
                    f"The denial of the {enrollment.get_kind_display().lower()} for "
                    f"{profile.label} can be reconsidered only if the request is filed today."
                ],
            },
        )
    schedule(messages)


def reconsideration_waiting_stopped(enrollment: Enrollment) -> None:
    cancel(
        subject_type="enrollment",
        subject_ids=[str(enrollment.public_id)],
        kinds=RECONSIDERATION_KINDS,
    )


# --- development requests -------------------------------------------------------------

# Days before a development response is due: the provider's reminders, and the staff side's
# alerts (a request not answered in time gets the application rejected).
DEVELOPMENT_REMINDER_DAYS_BEFORE = (14, 7, 3, 1)
DEVELOPMENT_STAFF_ALERT_DAYS_BEFORE = (7, 2)
DEVELOPMENT_REMINDER_KINDS = ["development.reminder"]
DEVELOPMENT_STAFF_KINDS = ["development.staff_alert", "development.last_day"]


def _development_context(request: DevelopmentRequest, client, *, headline, lines):
    firm = client.firm
    return {
        "subject": headline,
        "headline": headline,
        "lines": lines,
        "steps": steps.answer_development(
            asked=request.asked, firm_name=firm.name, due=_long_date(firm, request.deadline)
        ),
        "profile": request.enrollment.profile.label,
        "deadline": request.deadline,
    }


def development_opened(request: DevelopmentRequest) -> None:
    """When the provider must act: told at once and reminded before the due date. The staff
    side is alerted before it, and on the day, whoever must act."""
    profile = request.enrollment.profile
    client = _client_with_people(profile.client_id)
    firm = client.firm
    now = timezone.now()
    messages = []
    if request.provider_must_act:
        people = provider_side(client, Step.ANSWER_DEVELOPMENT, profile)
        messages += [
            _message(
                client,
                request,
                kind="development.requested",
                step="opened",
                due=now,
                to=person,
                context=_development_context(
                    request,
                    client,
                    headline="The Medicare contractor needs something from you",
                    lines=[
                        f"The contractor reviewing the application for your "
                        f"{profile.in_sentence} asked for more information, and only you can "
                        f"give it. The answer is due by {_long_date(firm, request.deadline)}."
                    ],
                ),
            )
            for person in people
        ]
        for days in DEVELOPMENT_REMINDER_DAYS_BEFORE:
            due = civil_before(firm, request.deadline, days)
            if due < now:
                continue
            messages += [
                _message(
                    client,
                    request,
                    kind="development.reminder",
                    step=f"before-{days}",
                    due=due,
                    to=person,
                    context=_development_context(
                        request,
                        client,
                        headline="Reminder: the Medicare contractor is waiting for your answer",
                        lines=[
                            f"The answer is due by {_long_date(firm, request.deadline)} "
                            f"({days} day{'s' if days != 1 else ''} left). The contractor "
                            "rejects an application whose request is not answered in time."
                        ],
                    ),
                )
                for person in people
            ]
    who = "the provider" if request.provider_must_act else "the firm"
    for days in DEVELOPMENT_STAFF_ALERT_DAYS_BEFORE:
        due = civil_before(firm, request.deadline, days)
        if due < now:
            continue
        messages += _staff_message(
            client,
            request,
            kind="development.staff_alert",
            step=f"before-{days}",
            due=due,
            context={
                "subject": f"{client.display_name}: development response due in {days} days",
                "headline": "A development response is due soon",
                "lines": [
                    f"Request {request.number} for {profile.label} (letter of "
                    f"{request.letter_on:%B %-d}) is due on "
                    f"{_long_date(firm, request.deadline)}; {who} must act.",
                    f"It asks for: {request.asked}",
                ],
            },
        )
    messages += _staff_message(
        client,
        request,
        kind="development.last_day",
        step="last-day",
        due=max(civil_before(firm, request.deadline, 0), now),
        context={
            "subject": f"{client.display_name}: development response due today",
            "headline": "A development response is due today",
            "lines": [
                f"Request {request.number} for {profile.label} must reach the contractor "
                "today, or the application is rejected."
            ],
        },
    )
    schedule(messages)


def development_waiting_stopped(request: DevelopmentRequest) -> None:
    cancel(
        subject_type="developmentrequest",
        subject_ids=[str(request.public_id)],
        kinds=DEVELOPMENT_REMINDER_KINDS + DEVELOPMENT_STAFF_KINDS,
    )


def development_waiting_again(request: DevelopmentRequest) -> None:
    reopen(
        subject_type="developmentrequest",
        subject_id=str(request.public_id),
        kinds=DEVELOPMENT_REMINDER_KINDS,
    )


def development_claimed(request: DevelopmentRequest, party: Party) -> None:
    """The provider says they sent it: the provider's reminders stop; the staff alerts keep
    running until the response reaches the contractor."""
    cancel(
        subject_type="developmentrequest",
        subject_ids=[str(request.public_id)],
        kinds=DEVELOPMENT_REMINDER_KINDS,
    )
    client = _client_with_people(request.enrollment.profile.client_id)
    schedule(
        _staff_message(
            client,
            request,
            kind="development.verify",
            step=f"claim-{timezone.now():%Y%m%d%H%M%S}",
            due=timezone.now(),
            context={
                "subject": f"Check: {client.display_name} says they sent what the contractor "
                "asked for",
                "headline": f"{party.name} says development request {request.number} is done",
                "lines": [
                    f"It asked for: {request.asked}",
                    "Check what arrived, send the response to the contractor and record it, "
                    "or send it back to the provider.",
                ],
            },
        )
    )


# --- the provider's own I&A login -----------------------------------------------------


def ia_regain_claimed(client: Client, party: Party) -> None:
    """The provider says their I&A login is theirs again: the staff side checks it."""
    client = _client_with_people(client.pk)
    schedule(
        _staff_message(
            client,
            client,
            kind="ia.verify",
            step=f"regain-{timezone.now():%Y%m%d%H%M%S}",
            due=timezone.now(),
            context={
                "subject": f"Check: {client.display_name} says their I&A login is theirs again",
                "headline": f"{party.name} says they regained their I&A login",
                "lines": [
                    "Check with them that they can log in to I&A, then record the login as "
                    "the provider's on the client page."
                ],
            },
        )
    )


# --- credentials ----------------------------------------------------------------------

CREDENTIAL_REQUEST_KINDS = ["credential.reminder"]
# A revalidation's due-date alerts (workflows/revalidation.py): they stop when it closes.
REVALIDATION_ALERT_KINDS = ["revalidation.due_alert", "revalidation.due_today"]
CREDENTIAL_EXPIRY_KINDS = [
    "credential.expiry_reminder",
    "credential.expiry_alert",
    "credential.expired",
]


def _credential_context(credential: Credential, *, headline, lines, step_list=None):
    context = {
        "subject": headline,
        "headline": headline,
        "lines": lines,
        "profile": credential.profile.label,
    }
    if step_list:
        context["steps"] = step_list
    if credential.deadline:
        context["deadline"] = credential.deadline
    return context


def _asked(credential: Credential, firm) -> tuple[str, list[str]]:
    """What the provider's side is asked ("send your W-9"), and its steps."""
    due = end_of_day(firm, credential.due_on)
    if not credential.kind.needs_file:
        steps_list = steps.reattest_caqh(caqh_id=credential.number, due=_long_date(firm, due))
        return "re-attest your CAQH ProView profile", steps_list
    steps_list = steps.upload_document(
        what=credential.what,
        note=credential.request_note,
        reason=credential.rejection_reason if credential.state == Credential.State.REJECTED else "",
    )
    return f"send your {credential.what}", steps_list


def _request_reminders(credential: Credential, client, people) -> list[Message]:
    """Reminders before the request's due date, on the firm's cadence. Keyed by the moment
    the request (or its rejection) was made: asked again, even for the same date, they are
    new messages, never the cancelled ones of an earlier ask."""
    firm = client.firm
    now = timezone.now()
    due = end_of_day(firm, credential.due_on)
    asked, step_list = _asked(credential, firm)
    stamp = f"{credential.state_entered_at:%y%m%d%H%M%S}"
    messages = []
    for days in parse_day_list(firm.document_reminder_days):
        moment = civil_before(firm, due, days)
        if moment < now:
            continue
        messages += [
            _message(
                client,
                credential,
                kind="credential.reminder",
                step=f"before-{days}-{stamp}",
                due=moment,
                to=person,
                context=_credential_context(
                    credential,
                    headline=f"Reminder: please {asked}",
                    lines=[
                        f"It is due by {_long_date(firm, due)} "
                        f"({days} day{'s' if days != 1 else ''} left)."
                    ],
                    step_list=step_list,
                ),
            )
            for person in people
        ]
    return messages


def _ask_provider(credential: Credential, *, kind: str, headline: str, lines) -> None:
    """Tell the provider's side what is asked of them now (`lines(due)`: the message's words
    for the due date), and remind them before it is due."""
    profile = credential.profile
    client = _client_with_people(profile.client_id)
    firm = client.firm
    _asked_for, step_list = _asked(credential, firm)
    due = _long_date(firm, end_of_day(firm, credential.due_on))
    people = provider_side(client, Step.UPLOAD_DOCUMENT, profile)
    messages = [
        _message(
            client,
            credential,
            kind=kind,
            step=f"{kind.rsplit('.', 1)[1]}-{credential.state_entered_at:%Y%m%d%H%M%S}",
            due=timezone.now(),
            to=person,
            context=_credential_context(
                credential, headline=headline, lines=lines(due), step_list=step_list
            ),
        )
        for person in people
    ]
    schedule(messages + _request_reminders(credential, client, people))


def credential_requested(credential: Credential) -> None:
    """The provider's side is asked for a document: told at once, reminded before it is due
    on the firm's cadence; the staff side hears when it arrives."""
    asked, _steps = _asked(credential, credential.firm)
    _ask_provider(
        credential,
        kind="credential.requested",
        headline=f"{credential.firm.name} asks you to {asked}",
        lines=lambda due: [f"Please {asked} by {due}."],
    )


def credential_received(credential: Credential, *, by: str) -> None:
    """A document arrived (or the provider says they re-attested): the staff side reviews it;
    the provider's reminders stop (the request's, and a renewal's before the expiry; the
    staff side's expiry alerts keep running until the new one is accepted)."""
    cancel(
        subject_type="credential",
        subject_ids=[str(credential.public_id)],
        kinds=[*CREDENTIAL_REQUEST_KINDS, "credential.expiry_reminder"],
    )
    if not by:
        return  # staff uploaded it themselves
    client = _client_with_people(credential.profile.client_id)
    what = credential.what
    schedule(
        _staff_message(
            client,
            credential,
            kind="credential.received",
            step=f"received-{timezone.now():%Y%m%d%H%M%S}",
            due=timezone.now(),
            context={
                "subject": f"Review: {client.display_name} sent their {what}",
                "headline": f"{by} sent the {what}",
                "lines": [
                    "Open it, check it, and accept it with the dates on it, or reject it "
                    "saying why (the provider is asked again)."
                ],
            },
        )
    )


def credential_rejected(credential: Credential) -> None:
    """What arrived was refused: the provider's side hears why, and is reminded again before
    the (possibly new) due date; a renewal's reminders before the expiry come back."""
    cancel(
        subject_type="credential",
        subject_ids=[str(credential.public_id)],
        kinds=CREDENTIAL_REQUEST_KINDS,
    )
    _ask_provider(
        credential,
        kind="credential.rejected",
        headline=f"We could not accept your {credential.what}",
        lines=lambda due: [
            f"The reason: {credential.rejection_reason}",
            f"Please send it again by {due}.",
        ],
    )
    if credential.expires_on:
        reopen(
            subject_type="credential",
            subject_id=str(credential.public_id),
            kinds=["credential.expiry_reminder"],
            step_contains=f"-{credential.expires_on}-",
        )


def credential_on_file(credential: Credential, *, previous_expiry=None) -> None:
    """Accepted with its dates: the request's reminders stop, and the expiry's are scheduled
    on the firm's cadence (the provider's renewal reminders, the staff side's alerts, and an
    alert on the day it expires). A new expiry replaces the old one's."""
    cancel(
        subject_type="credential",
        subject_ids=[str(credential.public_id)],
        kinds=CREDENTIAL_REQUEST_KINDS,
    )
    if previous_expiry == credential.expires_on and previous_expiry is not None:
        return  # the same expiry: its reminders are scheduled already
    cancel(
        subject_type="credential",
        subject_ids=[str(credential.public_id)],
        kinds=CREDENTIAL_EXPIRY_KINDS,
    )
    if credential.expires_on is None:
        return
    schedule(expiry_messages(credential))


def expiry_messages(credential: Credential, *, now=None, admins=None) -> list[Message]:
    """The messages before one expiry (keys carry the expiry date: a renewal's are new)."""
    profile = credential.profile
    client = profile.client
    firm = client.firm
    now = now or timezone.now()
    expiry = end_of_day(firm, credential.expires_on)
    what = credential.what
    is_caqh = not credential.kind.needs_file
    on = _long_date(firm, expiry)
    people = provider_side(client, Step.UPLOAD_DOCUMENT, profile)
    # The expiry, and the minute it was recorded: a new expiry has new messages, and one set
    # back to an earlier date gets its (cancelled) reminders again. At most 32 characters.
    stamp = f"{credential.expires_on}-{now:%y%m%d%H%M}"
    messages = []
    for days in parse_day_list(firm.credential_reminder_days):
        moment = civil_before(firm, expiry, days)
        if moment < now:
            continue
        left = f"{days} day{'s' if days != 1 else ''}"
        if is_caqh:
            headline = f"Re-attest your CAQH ProView profile by {on}"
            step_list = steps.reattest_caqh(caqh_id=credential.number, due=on)
        else:
            headline = f"Your {what} expires on {on}"
            step_list = steps.upload_document(what=what, renewal=True)
        messages += [
            _message(
                client,
                credential,
                kind="credential.expiry_reminder",
                step=f"before-{days}-{stamp}",
                due=moment,
                to=person,
                context=_credential_context(
                    credential,
                    headline=headline,
                    lines=[f"{left} left. Send us the renewed one as soon as you have it."]
                    if not is_caqh
                    else [f"{left} left. Health plans stop using a profile not re-attested."],
                    step_list=step_list,
                ),
            )
            for person in people
        ]
        messages += _staff_message(
            client,
            credential,
            kind="credential.expiry_alert",
            step=f"before-{days}-{stamp}",
            due=moment,
            admins=admins,
            context={
                "subject": f"{client.display_name}: {what} expires in {left}",
                "headline": f"A credential expires on {on}",
                "lines": [
                    f"{client.display_name}'s {what} ({profile.label}) expires on {on}.",
                    "The provider is reminded too; record the renewed one when it arrives.",
                ],
            },
        )
    messages += _staff_message(
        client,
        credential,
        kind="credential.expired",
        step=f"expired-{stamp}",
        due=max(expiry, now),
        admins=admins,
        context={
            "subject": f"Expired: {client.display_name}'s {what}",
            "headline": f"{client.display_name}'s {what} expired today",
            "lines": [
                f"It ended on {on}. Until the renewed one is on file, the provider's "
                "enrollments and contracts that rely on it are at risk."
            ],
        },
    )
    return messages


def credential_stopped(credential: Credential) -> None:
    cancel(
        subject_type="credential",
        subject_ids=[str(credential.public_id)],
        kinds=CREDENTIAL_REQUEST_KINDS + CREDENTIAL_EXPIRY_KINDS,
    )


def revalidation_clock_moved(enrollment: Enrollment) -> None:
    """A revalidation changed state: its due-date alerts stop once it is submitted (the date
    is met) or closed, and come back if it returns to the firm (rejected, to resubmit)."""
    if enrollment.revalidation_clock_runs:
        reopen(
            subject_type="enrollment",
            subject_id=str(enrollment.public_id),
            kinds=REVALIDATION_ALERT_KINDS,
            step_contains=f"-{enrollment.due_on}-",
        )
    else:
        cancel(
            subject_type="enrollment",
            subject_ids=[str(enrollment.public_id)],
            kinds=REVALIDATION_ALERT_KINDS,
        )


# --- addresses that bounce ------------------------------------------------------------


def _who_has(firm, address: str) -> list[tuple[Client | None, str]]:
    """Everyone whose record in the firm carries `address`, as (their client, who they are):
    the provider, a delegate, an official, a signer still to sign; a member of the firm has
    no client. An address that bounced is usually one person's; each is named once (the
    provider recorded as an official too, say)."""
    found = [
        (client, "the provider", client.display_name)
        for client in Client.objects.filter(firm=firm, email=address)
    ]
    found += [
        (delegate.client, f"{delegate.name} (delegate)", delegate.name)
        for delegate in Delegate.objects.filter(
            firm=firm, email=address, is_active=True
        ).select_related("client")
    ]
    found += [
        (
            official.organization.client,
            f"{official.name} ({official.get_role_display()} of "
            f"{official.organization.legal_name})",
            official.name,
        )
        for official in Official.objects.filter(
            firm=firm, email=address, is_active=True
        ).select_related("organization__client")
    ]
    found += [
        (signer.signature_round.enrollment.profile.client, f"{signer.name} (signer)", signer.name)
        for signer in Signer.objects.filter(firm=firm, pecos_email=address)
        .exclude(state=Signer.State.SIGNED)
        .select_related("signature_round__enrollment__profile__client")
    ]
    found += [
        (
            None,
            f"{membership.user.display_name} (a member of {firm.name})",
            membership.user.display_name,
        )
        for membership in Membership.objects.filter(
            firm=firm, user__email=address, role__in=FIRM_ROLES, is_active=True
        ).select_related("user")
    ]
    named, people = set(), []
    for client, who, name in found:
        key = (client.pk if client else None, name)
        if key not in named:
            named.add(key)
            people.append((client, who))
    return people


def _bounce_message(firm, mark, *, to: User, subject, link: str, headline: str, lines) -> Message:
    return Message(
        firm=firm,
        kind="email.bouncing",
        subject_type=type(subject).__name__.lower(),
        subject_id=str(subject.public_id),
        step=f"bounce-{mark.pk}",
        due_at=timezone.now(),
        template="notification",
        to_email=to.email,
        recipient=to,
        link_path=link,
        channels=("in_app",),
        context={
            "name": to.display_name,
            "subject": headline,
            "headline": headline,
            "lines": lines,
        },
    )


def address_bouncing(mark, notification) -> None:
    """The mail server refused an address for good (`notifications.bounces`): tell each
    client's staff (the assigned member, else the firm's admins) whose address it is, in the
    portal. An address on no client's record (a member's, or no longer on any record): the
    firm's admins, with the message that bounced."""
    firm = notification.firm
    when = f"{mark.since.astimezone(firm.zone):%B %-d at %-I:%M %p}"
    refused = f"The mail server refused {mark.address} on {when}: “{mark.reply}”."
    by_client: dict[int, tuple[Client, list[str]]] = {}
    elsewhere = []
    for client, who in _who_has(firm, mark.address):
        if client is None:
            elsewhere.append(who)
        else:
            by_client.setdefault(client.pk, (client, []))[1].append(who)
    messages = []
    for client, people in by_client.values():
        headline = f"{client.display_name}: emails to {' and '.join(people)} bounce"
        lines = [
            refused,
            "Emails to it fail at once, and the client page marks it “Email bouncing”. Ask "
            "for the right address and correct every record that carries it (an official's "
            "is the email entered in PECOS: correct it there, then record the official "
            "again); the mark goes when no record carries it.",
        ]
        link = reverse("client_detail", args=[client.public_id])
        messages += [
            _bounce_message(
                firm, mark, to=user, subject=client, link=link, headline=headline, lines=lines
            )
            for user in staff_side(client)
        ]
    if elsewhere or not by_client:
        whose = (
            f"It is the address of {' and '.join(elsewhere)}."
            if elsewhere
            else f"No record carries it now; the email was “{notification.title}”."
        )
        headline = f"Emails to {mark.address} bounce"
        messages += [
            _bounce_message(
                firm,
                mark,
                to=user,
                subject=firm,
                link=reverse("dashboard"),
                headline=headline,
                lines=[refused, whose],
            )
            for user in firm_admins([firm.pk]).get(firm.pk, [])
        ]
    schedule(messages)


@receiver(address_bounced, dispatch_uid="workflows.address_bouncing")
def _address_bounced(sender, mark, notification, **kwargs) -> None:
    address_bouncing(mark, notification)


@receiver(address_in_use, dispatch_uid="workflows.address_in_use")
def _address_in_use(sender, firm, address, **kwargs) -> bool:
    return bool(_who_has(firm, normalize_email(address)))
