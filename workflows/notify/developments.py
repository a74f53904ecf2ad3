"""Development requests: when the contractor asks the provider for more, they are told at
once and reminded before the due date; the staff side is alerted before it and on the day."""

from django.utils import timezone

from notifications.outbox import cancel, reopen, schedule

from .. import steps
from ..models import DevelopmentRequest
from ..rules import Party, Step
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
    clock = Clock(firm, now, deadline=request.deadline)
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
        messages += reminders(
            client,
            request,
            clock,
            DEVELOPMENT_REMINDER_DAYS_BEFORE,
            kind="development.reminder",
            people=people,
            context=lambda days, due: _development_context(
                request,
                client,
                headline="Reminder: the Medicare contractor is waiting for your answer",
                lines=[
                    f"The answer is due by {_long_date(firm, request.deadline)} "
                    f"({_days(days)} left). The contractor "
                    "rejects an application whose request is not answered in time."
                ],
            ),
        )
    who = "the provider" if request.provider_must_act else "the firm"
    messages += reminders(
        client,
        request,
        clock,
        DEVELOPMENT_STAFF_ALERT_DAYS_BEFORE,
        kind="development.staff_alert",
        context=lambda days, due: {
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
        due=clock.last_day(),
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
    _tell_staff_now(
        client,
        request,
        kind="development.verify",
        step="claim",
        subject=f"Check: {client.display_name} says they sent what the contractor asked for",
        headline=f"{party.name} says development request {request.number} is done",
        lines=[
            f"It asked for: {request.asked}",
            "Check what arrived, send the response to the contractor and record it, "
            "or send it back to the provider.",
        ],
    )
