"""Enrollment outcomes: the provider hears the contractor's decision; a denial's
reconsideration window alerts the staff side before it closes."""

from dataclasses import dataclass

from django.utils import timezone

from notifications.outbox import cancel, schedule

from ..models import Enrollment
from .common import Clock, _client_with_people, _long_date, _message, _staff_message, reminders

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
        clock = Clock(firm, now, deadline=deadline)
        messages += reminders(
            client,
            enrollment,
            clock,
            RECONSIDERATION_ALERT_DAYS_BEFORE,
            kind="reconsideration.staff_alert",
            context=lambda days, due: {
                "subject": f"{client.display_name}: reconsideration window closes in {days} days",
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
            due=clock.last_day(),
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
