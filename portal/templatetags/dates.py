"""Date filters for long lists, where Django's `timesince` (translated, two units) costs a
noticeable share of the page: `age` says how long ago in one plain unit."""

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

UNITS = [  # (name, seconds, shown while the age is under this many seconds)
    ("minute", 60, 3600),
    ("hour", 3600, 86400),
    ("day", 86400, 90 * 86400),
    ("month", 30 * 86400, 730 * 86400),
    ("year", 365 * 86400, None),
]


@register.filter
def age(moment, now=None) -> str:
    """ "3 days", "5 hours", "4 months": how long ago `moment` was, in its largest useful unit."""
    if not moment:
        return ""
    seconds = ((now or timezone.now()) - moment).total_seconds()
    if seconds < 60:
        return "less than a minute"
    for name, size, limit in UNITS:
        if limit is None or seconds < limit:
            count = int(seconds // size)
            return f"{count} {name}{'' if count == 1 else 's'}"
    return ""


@register.filter
def iso(moment) -> str:
    """A moment for a `<time datetime>` attribute, in the active (the firm's) zone, to the
    second: "2026-12-04T15:30:00-0500". What `date:'Y-m-d\\TH:i:sO'` says, a tenth of its
    cost (a caseload page formats fifty of them)."""
    if not moment:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M:%S%z")


# A deadline this many days away or nearer is "due soon" (a warning); past it, overdue.
DUE_SOON_DAYS = 7


def due_in_days(deadline, today=None) -> int:
    """Calendar days from today to the deadline's date, in the active (the firm's) zone."""
    today = today or timezone.localdate()
    return (timezone.localtime(deadline).date() - today).days


@register.simple_tag
def due_badge(deadline, today=None):
    """Overdue and due-soon at a glance, in words as well as colour: "3 days overdue",
    "due today", "due tomorrow", "due in 5 days". Nothing when the deadline is far."""
    if deadline is None:
        return ""
    days = due_in_days(deadline, today)
    if days < 0:
        late = -days
        text, tone = f"{late} day{'s' if late != 1 else ''} overdue", "danger"
    elif days == 0:
        text, tone = "due today", "danger"
    elif days == 1:
        text, tone = "due tomorrow", "warn"
    elif days <= DUE_SOON_DAYS:
        text, tone = f"due in {days} days", "warn"
    else:
        return ""
    return format_html('<strong class="badge badge-{}">{}</strong>', tone, text)
