"""allauth glue: no open sign-up; every account comes from an invitation."""

from datetime import timedelta

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.models import Authenticator
from django.utils import timezone

from .models import Membership


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """allauth's emails (login codes, password resets) carry the name of the firm the
        person belongs to, as every other email does, not the site's."""
        self._brand = _firm_name_for(email)
        try:
            super().send_mail(template_prefix, email, context)
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
            request = context.request
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


def _firm_name_for(email: str) -> str:
    """The firm of the person with this email (their first membership), if any."""
    membership = (
        Membership.objects.filter(user__email__iexact=email, is_active=True)
        .select_related("firm")
        .order_by("created_at", "id")
        .first()
    )
    return membership.firm.name if membership else ""


def _logged_in_recently(request) -> bool:
    logged_in_at = request.session.get(LOGGED_IN_AT_SESSION_KEY)
    if not isinstance(logged_in_at, (int, float)):
        return False
    return timezone.now().timestamp() - logged_in_at < FIRST_ENROLMENT_WINDOW.total_seconds()


def _enrolling_first_factor(user) -> bool:
    """No authenticator older than a few minutes: this is the first enrolment, in progress."""
    settled = timezone.now() - FIRST_ENROLMENT_WINDOW
    return not Authenticator.objects.filter(user=user, created_at__lt=settled).exists()
