"""Date filters for long lists, where Django's `timesince` (translated, two units) costs a
noticeable share of the page: `age` says how long ago in one plain unit."""

from django import template
from django.utils import timezone

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
