"""Credentials and their clocks: a document asked for and reminded before it is due, the
staff side told when it arrives; an expiry's reminders and alerts; a revalidation's due-date
alerts stopped and resumed with its clock."""

from django.utils import timezone

from notifications.outbox import Message, cancel, reopen, schedule
from portal.models import parse_day_list

from .. import steps
from ..deadlines import end_of_day
from ..models import Credential, Enrollment
from ..rules import Step
from .common import (
    Clock,
    _client_with_people,
    _days,
    _long_date,
    _message,
    _staff_message,
    _tell_staff_now,
    provider_side,
    reminders,
)

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
    clock = Clock(firm, now, deadline=due, stamp=f"{credential.state_entered_at:%y%m%d%H%M%S}")
    return reminders(
        client,
        credential,
        clock,
        parse_day_list(firm.document_reminder_days),
        kind="credential.reminder",
        people=people,
        context=lambda days, moment: _credential_context(
            credential,
            headline=f"Reminder: please {asked}",
            lines=[f"It is due by {_long_date(firm, due)} ({_days(days)} left)."],
            step_list=step_list,
        ),
    )


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
    _tell_staff_now(
        client,
        credential,
        kind="credential.received",
        step="received",
        subject=f"Review: {client.display_name} sent their {what}",
        headline=f"{by} sent the {what}",
        lines=[
            "Open it, check it, and accept it with the dates on it, or reject it "
            "saying why (the provider is asked again)."
        ],
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
    if is_caqh:
        headline = f"Re-attest your CAQH ProView profile by {on}"
        step_list = steps.reattest_caqh(caqh_id=credential.number, due=on)
        then = "Health plans stop using a profile not re-attested."
    else:
        headline = f"Your {what} expires on {on}"
        step_list = steps.upload_document(what=what, renewal=True)
        then = "Send us the renewed one as soon as you have it."
    clock = Clock(firm, now, deadline=expiry, stamp=stamp)
    cadence = parse_day_list(firm.credential_reminder_days)
    messages = reminders(
        client,
        credential,
        clock,
        cadence,
        kind="credential.expiry_reminder",
        people=people,
        context=lambda days, moment: _credential_context(
            credential,
            headline=headline,
            lines=[f"{_days(days)} left. {then}"],
            step_list=step_list,
        ),
    )
    messages += reminders(
        client,
        credential,
        clock,
        cadence,
        kind="credential.expiry_alert",
        admins=admins,
        context=lambda days, moment: {
            "subject": f"{client.display_name}: {what} expires in {_days(days)}",
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
