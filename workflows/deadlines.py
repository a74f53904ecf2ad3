"""Deadlines are counted in the firm's own time zone: "30 days" means the same wall-clock time
thirty calendar days later where the firm works, across daylight-saving changes."""

from datetime import date, datetime, time, timedelta

from portal.models import Firm


def days_after(firm: Firm, moment: datetime, days: int) -> datetime:
    local = moment.astimezone(firm.zone)
    # Arithmetic on an aware datetime keeps the wall-clock time; the offset is recomputed.
    shifted = (local.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=firm.zone)
    return shifted.astimezone(moment.tzinfo)


def grant_deadline(firm: Firm, sent_at: datetime) -> datetime:
    return days_after(firm, sent_at, firm.grant_expiry_days)


def signature_deadline(firm: Firm, opened_at: datetime) -> datetime:
    return days_after(firm, opened_at, firm.signature_deadline_days)


def end_of_day(firm: Firm, day: date) -> datetime:
    """The last minute of `day` where the firm works: a date-only deadline from a letter
    ("respond by March 5") is met by anything that day."""
    return datetime.combine(day, time(23, 59), tzinfo=firm.zone)


def development_due_on(firm: Firm, letter_on: date) -> date:
    return letter_on + timedelta(days=firm.development_response_days)


def reconsideration_due_on(firm: Firm, decided_on: date) -> date:
    return decided_on + timedelta(days=firm.reconsideration_days)


def days_left(firm: Firm, deadline: datetime, now: datetime) -> int:
    """Whole calendar days until the deadline's date, in the firm's time zone (0 = today)."""
    return (deadline.astimezone(firm.zone).date() - now.astimezone(firm.zone).date()).days
