"""allauth glue: no open sign-up; every account comes from an invitation."""

from datetime import timedelta

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.models import Authenticator
from django.utils import timezone


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """A person enrolling their first authenticator has just logged in (or set their
        password from an invitation): don't ask for the password again while they set it up
        and save their recovery codes. Every later MFA change requires reauthentication."""
        if app == "allauth.mfa":
            user = getattr(context.request, "user", None)
            if user is not None and user.is_authenticated and _enrolling_first_factor(user):
                return False
        return super().is_reauthentication_required(app=app, **kwargs)


FIRST_ENROLMENT_WINDOW = timedelta(minutes=10)


def _enrolling_first_factor(user) -> bool:
    """No authenticator older than a few minutes: this is the first enrolment, in progress."""
    settled = timezone.now() - FIRST_ENROLMENT_WINDOW
    return not Authenticator.objects.filter(user=user, created_at__lt=settled).exists()
