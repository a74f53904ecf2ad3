"""allauth glue: no open sign-up; every account comes from an invitation."""

import logging
from datetime import timedelta

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from allauth.mfa.models import Authenticator
from django.contrib.sites.shortcuts import get_current_site
from django.utils import timezone

from .models import Membership

logger = logging.getLogger(__name__)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """allauth's emails (login codes, password resets) go through the notifications
        outbox like every other email, as the firm's email: the firm of the person's first
        active membership, whose name the subject carries (docs/decisions.md).

        1. The context is allauth's own (request, email, current_site and the caller's).
        2. For a member of a firm, `account_email_requested` hands it to the outbox (the
           notifications app schedules it, delivery requested on commit at once).
        3. Nobody took it (a platform operator, who belongs to no firm): it is sent from
           the request as allauth does; a mail server that fails is logged, never a 500."""
        from .signals import account_email_requested  # portal.signals imports this module

        request = allauth_context.request
        full_context = {
            "request": request,
            "email": email,
            "current_site": get_current_site(request),
            **context,
        }
        membership = _membership_for(email)
        if membership is not None:
            taken = account_email_requested.send(
                sender=type(self),
                firm=membership.firm,
                user=membership.user,
                email=email,
                template_prefix=template_prefix,
                context=full_context,
            )
            if any(response for _receiver, response in taken):
                return
        self._brand = membership.firm.name if membership else ""
        try:
            super().send_mail(template_prefix, email, context)
        except OSError as exc:  # smtplib's errors are OSErrors; no address in the log
            logger.error("account email %s not sent: %s", template_prefix, type(exc).__name__)
        finally:
            self._brand = None

    def format_email_subject(self, subject: str) -> str:
        return f"{getattr(self, '_brand', None) or 'credportal'}: {subject}"

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """A person enrolling their first authenticator right after logging in (or setting
        their password from an invitation) is not asked for the password again while they
        set it up and save their recovery codes. A session older than that is asked, so a
        stolen session cannot add a factor and lock the owner out; every later MFA change
        requires reauthentication."""
        if app == "allauth.mfa":
            request = allauth_context.request
            user = getattr(request, "user", None)
            if (
                user is not None
                and user.is_authenticated
                and _logged_in_recently(request)
                and _enrolling_first_factor(user)
            ):
                return False
        return super().is_reauthentication_required(app=app, **kwargs)


FIRST_ENROLMENT_WINDOW = timedelta(minutes=10)
LOGGED_IN_AT_SESSION_KEY = "portal.logged_in_at"  # set by portal.signals on every login


def _membership_for(email: str) -> Membership | None:
    """The first active membership of the person with this email (the firm they see first
    after logging in), if any."""
    return (
        Membership.objects.filter(user__email__iexact=email, is_active=True)
        .select_related("firm", "user")
        .order_by("created_at", "id")
        .first()
    )


def _logged_in_recently(request) -> bool:
    logged_in_at = request.session.get(LOGGED_IN_AT_SESSION_KEY)
    if not isinstance(logged_in_at, (int, float)):
        return False
    return timezone.now().timestamp() - logged_in_at < FIRST_ENROLMENT_WINDOW.total_seconds()


def _enrolling_first_factor(user) -> bool:
    """No authenticator older than a few minutes: this is the first enrolment, in progress."""
    settled = timezone.now() - FIRST_ENROLMENT_WINDOW
    return not Authenticator.objects.filter(user=user, created_at__lt=settled).exists()
