"""The in-app notification centre and email preferences."""

from datetime import timedelta

from allauth.account.internal.flows.login import perform_login, record_authentication
from allauth.account.models import Login
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from portal.forms import QueryFilterForm
from portal.models import Membership

from . import signin
from .models import Notification, Preference, SignInLink
from .outbox import Message, schedule
from .selectors import decode_cursor, inbox_for, inbox_page


class InboxPageForm(QueryFilterForm):
    """The notification centre's one parameter: where the page starts (a cursor)."""

    after = forms.CharField(max_length=200, required=False)

    left_out_messages = {
        "after": "That page of notifications was not recognised, so these are the newest."
    }

    def clean_after(self):
        after = self.cleaned_data["after"]
        if after and decode_cursor(after) is None:
            raise forms.ValidationError("not a page", code="invalid")
        return after


class MarkAllReadForm(forms.Form):
    # When the page with the button was shown: what became due later stays unread (nobody
    # saw it), and a second press of the same button finds nothing left to mark.
    shown_at = forms.DateTimeField(required=False)


@login_required
def inbox(request):
    cursor = InboxPageForm(request).filters()["after"]
    page = inbox_page(
        request.user, request.firm, zone=timezone.get_current_timezone(), cursor=cursor
    )
    return render(
        request,
        "notifications/inbox.html",
        {"inbox": page, "shown_at": timezone.now(), "is_first_page": not cursor},
    )


@login_required
@require_POST
def mark_read(request, public_id):
    notification = get_object_or_404(inbox_for(request.user, request.firm), public_id=public_id)
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if notification.link_path:
        return redirect(notification.link_path)
    return redirect("inbox")


@login_required
@require_POST
def mark_all_read(request):
    """Mark read what the person had in this firm's inbox when they pressed the button.
    Not audited, as opening one is not: it changes what one person has seen, not the firm's
    records."""
    now = timezone.now()
    form = MarkAllReadForm(request.POST)
    shown_at = form.cleaned_data["shown_at"] if form.is_valid() else None
    until = min(shown_at, now) if shown_at else now
    count = (
        inbox_for(request.user, request.firm)
        .filter(read_at__isnull=True, due_at__lte=until)
        .update(read_at=now)
    )
    if count:
        messages.success(request, f"{count} notification{pluralize(count)} marked read.")
    else:
        messages.info(request, "Nothing was unread.")
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


# --- one tap from the email (notifications/signin.py) -----------------------------------


def _link_problem(link: SignInLink | None) -> str:
    """Why this link cannot sign anyone in now ("" if it can)."""
    if link is None:
        return "This sign-in link is not valid."
    if link.used_at is not None:
        return "This sign-in link was already used: each one works once."
    sent = (
        Notification.objects.filter(idempotency_key=link.idempotency_key)
        .values_list("state", "sent_at")
        .first()
    )
    if (
        not sent
        or sent[0] != Notification.State.SENT
        or sent[1] + signin.VALID_FOR < timezone.now()
    ):
        return "This sign-in link has expired: links work for 24 hours after we send them."
    if not (
        link.user.is_active
        and Membership.objects.filter(user=link.user, firm=link.firm, is_active=True).exists()
    ):
        return "This sign-in link is not valid."
    return ""


@require_http_methods(["GET", "POST"])
def sign_in_link(request, token):
    """GET: one button to open the page (mail scanners follow links; they do not press
    buttons). POST: use the link once and sign its recipient in, through allauth's stages
    (a second factor is asked for if they have one), landing on the page it is about."""
    link = (
        SignInLink.objects.select_related("user", "firm")
        .filter(token_hash=signin.token_hash(token))
        .first()
    )
    problem = _link_problem(link)
    context = {"token": token, "link": link, "problem": problem}
    if problem:
        return render(request, "notifications/sign_in_link.html", context, status=410)
    if request.user.is_authenticated and request.user.pk != link.user_id:
        context["problem"] = (
            "This link is for someone else than the person signed in on this browser. "
            "Log out first, then open the link again."
        )
        context["other_person"] = True
        return render(request, "notifications/sign_in_link.html", context, status=403)
    if request.method == "GET":
        return render(request, "notifications/sign_in_link.html", context)
    if not SignInLink.objects.filter(pk=link.pk, used_at__isnull=True).update(
        used_at=timezone.now()
    ):
        context["problem"] = "This sign-in link was already used: each one works once."
        return render(request, "notifications/sign_in_link.html", context, status=410)
    if request.user.is_authenticated:
        return redirect(link.path)
    # The link stands for an emailed code (allauth's "code" method): the MFA stage still runs.
    record_authentication(request, link.user, method="code", email=link.user.email)
    return perform_login(
        request, Login(user=link.user, redirect_url=link.path, email=link.user.email)
    )


@require_POST
def sign_in_link_fresh(request, token):
    """Email a fresh link to the same recipient (never to anyone else), at most one every
    few minutes; the answer is the same whatever the link was."""
    link = (
        SignInLink.objects.select_related("user", "firm")
        .filter(token_hash=signin.token_hash(token))
        .first()
    )
    now = timezone.now()
    if link is not None and (
        link.fresh_sent_at is None or link.fresh_sent_at < now - FRESH_LINK_INTERVAL
    ):
        SignInLink.objects.filter(pk=link.pk).update(fresh_sent_at=now)
        if link.user.is_active:
            schedule(
                [
                    Message(
                        firm=link.firm,
                        kind="portal.sign_in",
                        subject_type="user",
                        subject_id=str(link.user.public_id),
                        step=f"fresh-{now:%Y%m%d%H%M%S}",
                        due_at=now,
                        template="notification",
                        to_email=link.user.email,
                        recipient=link.user,
                        link_path=link.path,
                        sign_in=True,
                        channels=(Notification.Channel.EMAIL,),
                        context={
                            "name": link.user.display_name,
                            "subject": f"Your sign-in link for {link.firm.name}",
                            "headline": "Your sign-in link",
                            "lines": [
                                "You asked for a fresh link: it opens your to-do list in one "
                                "tap, once, within 24 hours."
                            ],
                        },
                    )
                ]
            )
    return render(request, "notifications/sign_in_link.html", {"fresh_sent": True}, status=200)


FRESH_LINK_INTERVAL = timedelta(minutes=5)
