"""`{% bouncing_mark address %}`: "Email bouncing" beside an address the mail server refused
for good, from the `bouncing` marks the view read (`notifications.selectors.bouncing_among`)."""

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def bouncing_mark(context, address: str) -> str:
    mark = (context.get("bouncing") or {}).get((address or "").lower())
    if mark is None:
        return ""
    since = timezone.localtime(mark.since)  # the firm's zone, activated for the request
    return format_html(
        ' <span class="badge badge-danger" title="Refused by the mail server on {}: {}. '
        'Correct the address to take this mark off.">Email bouncing</span>',
        f"{since:%b %-d, %Y at %-I:%M %p}",
        mark.reply,
    )
