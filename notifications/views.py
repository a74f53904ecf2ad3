"""The in-app notification centre and email preferences."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from .models import Notification, Preference
from .selectors import inbox_for

INBOX_LENGTH = 50


@login_required
def inbox(request):
    items = list(inbox_for(request.user)[:INBOX_LENGTH])
    return render(request, "notifications/inbox.html", {"items": items})


@login_required
@require_POST
def mark_read(request, public_id):
    notification = get_object_or_404(inbox_for(request.user), public_id=public_id)
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if notification.link_path:
        return redirect(notification.link_path)
    return redirect("inbox")


@login_required
@require_POST
def mark_all_read(request):
    count = inbox_for(request.user).filter(read_at__isnull=True).update(read_at=timezone.now())
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect("inbox")


@login_required
def preferences(request):
    preference, _ = Preference.objects.get_or_create(user=request.user)
    if request.method == "POST":
        preference.nonessential_email = request.POST.get("nonessential_email") == "on"
        preference.save(update_fields=["nonessential_email"])
        messages.success(
            request,
            "Saved. Reminders about deadlines are always emailed."
            if not preference.nonessential_email
            else "Saved.",
        )
        return redirect("notification_preferences")
    return render(request, "notifications/preferences.html", {"preference": preference})
