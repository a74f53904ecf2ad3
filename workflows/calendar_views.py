"""The calendar feed (read by calendar apps with its secret address, no login) and the
Security page that shows, creates, rotates and turns off that address."""

from allauth.mfa.base.views import IndexView
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST, require_safe

from portal.access import member_required

from . import calendar


@require_safe
def feed(request, token):
    """The person's deadlines as iCalendar. An unknown, rotated or turned-off address, or one
    whose owner left the firm, is 404 like any address that never existed."""
    found = calendar.feed_by_token(token)
    if found is None:
        raise Http404("No such calendar.")
    feed_row, membership = found
    body = calendar.feed_for(membership)
    calendar.calendar_feed_fetched(feed=feed_row, membership=membership)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="deadlines.ics"'
    # The address is the secret: no cache between the app and us keeps a copy.
    add_never_cache_headers(response)
    response["X-Robots-Tag"] = "noindex"
    return response


class SecurityView(IndexView):
    """allauth's two-factor page with the calendar address below it (templates/mfa/index.html)."""

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context["calendar_member"] = self.request.membership is not None
        context["calendar"] = calendar.feed_address(self.request.membership)
        return context


security = SecurityView.as_view()


@require_POST
@member_required()
def feed_rotate(request):
    """Create the feed, or replace its address (the old one stops working at once)."""
    _feed, created = calendar.calendar_feed_rotate(membership=request.membership)
    messages.success(
        request,
        "Your calendar address is ready: add it to your calendar app."
        if created
        else "Your calendar has a new address: update it in your calendar app; the old one "
        "no longer works.",
    )
    return redirect("mfa_index")


@require_POST
@member_required()
def feed_turn_off(request):
    if calendar.calendar_feed_turn_off(membership=request.membership):
        messages.success(request, "Your calendar feed is off: its address no longer works.")
    return redirect("mfa_index")
