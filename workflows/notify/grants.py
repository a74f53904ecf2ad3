"""Access grants: the provider asked to give the firm access in CMS, reminded while it is
pending, the staff side alerted late in the month; and the provider's own I&A login."""

from django.utils import timezone

from clients.models import Client
from notifications.outbox import cancel, reopen, schedule
from portal.models import parse_day_list

from .. import steps
from ..deadlines import days_left
from ..models import AccessGrant
from ..rules import Party, grant_step
from .common import (
    Clock,
    _client_with_people,
    _days,
    _message,
    _staff_message,
    _tell_staff_now,
    firm_admins,
    provider_side,
    reminders,
)

GRANT_REMINDER_KINDS = ["grant.reminder", "grant.staff_alert"]

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
    people = provider_side(client, grant_step(grant), grant.profile, grant.requested_role)
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
        for person in people
    ]
    clock = Clock(firm, now, deadline=grant.deadline, start=sent)

    def reminder(day, due):
        left = days_left(firm, grant.deadline, due) if grant.deadline else None
        lines = [
            (
                f"The access request for your {grant.profile.in_sentence} is still waiting."
                if grant.method == AccessGrant.Method.CONNECTION_REQUEST
                else f"Giving {firm.name} access to your {grant.profile.in_sentence} is to do."
            )
            + (f" {_days(left)} left before CMS rejects it." if left is not None else "")
        ]
        return _grant_context(grant, client, headline=GRANT_ASK[grant.method][1], lines=lines)

    def staff_alert(day, due):
        return {
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
        }

    # None on or after the deadline, nor any already past (a grant recorded late).
    messages += reminders(
        client,
        grant,
        clock,
        parse_day_list(firm.grant_reminder_days),
        kind="grant.reminder",
        people=people,
        context=reminder,
    )
    messages += reminders(
        client,
        grant,
        clock,
        parse_day_list(firm.grant_staff_alert_days),
        kind="grant.staff_alert",
        context=staff_alert,
    )
    schedule(messages)


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
    _tell_staff_now(
        client,
        grant,
        kind="grant.verify",
        step="claim",
        subject=f"Verify: {client.display_name} says access is granted",
        headline=f"{party.name} says the access request is approved",
        lines=[
            f"Profile: {grant.profile.label}. Check PECOS and mark it active, or send it "
            "back to the provider if you can't see it yet."
        ],
    )


def grant_firm_not_found(grant: AccessGrant, party: Party) -> None:
    """The provider can't find the firm in I&A to add it as surrogate: staff send a
    connection request instead (the seed's fallback)."""
    client = _client_with_people(grant.profile.client_id)
    firm = client.firm
    _tell_staff_now(
        client,
        grant,
        kind="grant.firm_not_found",
        step="not-found",
        subject=f"{client.display_name} can't find {firm.name_in_ia} in I&A",
        headline=f"{party.name} can't find you to add as surrogate",
        lines=[
            f"Profile: {grant.profile.label}. Cancel this step and send a connection "
            "request instead; check that the name in your settings is exactly the "
            f"one registered in I&A (now “{firm.name_in_ia}”).",
        ],
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


def ia_regain_claimed(client: Client, party: Party) -> None:
    """The provider says their I&A login is theirs again: the staff side checks it."""
    client = _client_with_people(client.pk)
    _tell_staff_now(
        client,
        client,
        kind="ia.verify",
        step="regain",
        subject=f"Check: {client.display_name} says their I&A login is theirs again",
        headline=f"{party.name} says they regained their I&A login",
        lines=[
            "Check with them that they can log in to I&A, then record the login as "
            "the provider's on the client page."
        ],
    )
