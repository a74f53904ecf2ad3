"""Audit receivers for Django's authentication signals (allauth logs in through Django)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import Signal, receiver
from django.utils import timezone

from . import audit
from .auth import LOGGED_IN_AT_SESSION_KEY
from .models import Membership, User, normalize_email

# Sent inside the transaction that issues an invitation's link (created or resent) or closes
# it: the notifications app schedules (or cancels) its email in the outbox, so the email
# exists if and only if the link does, and is delivered with the outbox's guarantees.
invitation_issued = Signal()  # invitation=
invitation_closed = Signal()  # invitation=
# Sent inside the transaction that changes a stored email address (a client's, a delegate's,
# a user's): the notifications app takes the "Email bouncing" mark off the old address.
address_edited = Signal()  # firm=, old=, new=, actor=
# Sent when allauth asks for one of its emails (a sign-in code, a password reset...) for a
# member of a firm: a receiver that schedules it in the outbox returns True, and
# portal.auth then sends nothing itself.
account_email_requested = Signal()  # firm=, user=, email=, template_prefix=, context=


def _firm_of(user):
    membership = (
        Membership.objects.filter(user=user, is_active=True)
        .select_related("firm")
        .order_by("created_at", "id")
        .first()
    )
    return membership.firm if membership else None


@receiver(user_logged_in, dispatch_uid="portal.audit_login")
def audit_login(sender, request, user, **kwargs):
    audit.record(
        "auth.login",
        actor=user,
        firm=_firm_of(user),
        target=user,
        ip=audit.client_ip(request) if request else None,
    )


@receiver(user_logged_in, dispatch_uid="portal.remember_login_time")
def remember_login_time(sender, request, user, **kwargs):
    """When this session logged in: a first second factor may be enrolled without a
    password prompt only shortly after (portal.auth.AccountAdapter)."""
    if request is not None and hasattr(request, "session"):
        request.session[LOGGED_IN_AT_SESSION_KEY] = timezone.now().timestamp()


@receiver(user_logged_out, dispatch_uid="portal.audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        audit.record(
            "auth.logout",
            actor=user,
            firm=_firm_of(user),
            target=user,
            ip=audit.client_ip(request) if request else None,
        )


@receiver(user_login_failed, dispatch_uid="portal.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    email = normalize_email(credentials.get("email") or credentials.get("username") or "")
    user = User.objects.filter(email=email).first() if email else None
    audit.record(
        "auth.login_failed",
        actor=None,
        firm=_firm_of(user) if user else None,
        target=user,
        target_label=email,
        ip=audit.client_ip(request) if request else None,
    )
