"""Deadlines are counted in the firm's own time zone: "30 days" means the same wall-clock time
thirty calendar days later where the firm works, across daylight-saving changes."""

from datetime import date, datetime, time, timedelta

from django.utils import timezone

from portal.models import Firm

from .models import Credential, CredentialKind


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


def days_since(firm: Firm, moment: datetime, now: datetime) -> int:
    """Whole calendar days since the moment's date, in the firm's time zone (0 = today)."""
    return days_left(firm, now, moment)


# --- credentials: one clock each ----------------------------------------------------------


def expiry_of(kind: CredentialKind, *, issued_on: date | None, expires_on: date | None):
    """When it ends: the document's own date, or a fixed period after it was last done."""
    if kind.renews_every_days and issued_on:
        return issued_on + timedelta(days=kind.renews_every_days)
    return expires_on if kind.expires else None


def clock_of(credential: Credential, firm: Firm) -> datetime | None:
    """The deadline this credential keeps now (None: nothing runs)."""
    moments = []
    if credential.state in Credential.OWED_STATES and credential.due_on:
        moments.append(end_of_day(firm, credential.due_on))
    if credential.state in Credential.LIVE_STATES and credential.expires_on:
        moments.append(end_of_day(firm, credential.expires_on))
    return min(moments) if moments else None


def status_of(credential: Credential, firm: Firm, now: datetime | None = None) -> tuple[str, str]:
    """(status, label) as people read it: an accepted credential near or past its expiry is
    "expiring" or "expired" (the firm's first reminder day counts as near)."""
    now = now or timezone.now()
    label = credential.get_state_display()
    if credential.state in Credential.LIVE_STATES and credential.expires_on:
        today = now.astimezone(firm.zone).date()
        # While its renewal is asked for or reviewed, it is still expired (or expiring).
        also = (
            ""
            if credential.state == Credential.State.ACCEPTED
            else f"; {label[0].lower()}{label[1:]}"
        )
        if credential.expires_on < today:
            return "expired", f"Expired{also}"
        if credential.expires_on <= today + timedelta(days=renewal_horizon(firm)):
            return "expiring", f"Expiring{also}"
    return credential.state, label


def renewal_horizon(firm: Firm) -> int:
    """How many days before an expiry a credential is "expiring" and its renewal is a to-do:
    the firm's first reminder."""
    return max(firm.credential_reminder_days or [30])
