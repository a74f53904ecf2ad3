"""allauth glue: no open sign-up; every account comes from an invitation."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.models import Authenticator


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """A person enrolling their first authenticator has just logged in (or set their
        password from an invitation) and has no factor to protect yet: don't ask for the
        password again. Every later MFA change still requires reauthentication."""
        if app == "allauth.mfa":
            user = getattr(context.request, "user", None)
            if (
                user is not None
                and user.is_authenticated
                and not Authenticator.objects.filter(user=user).exists()
            ):
                return False
        return super().is_reauthentication_required(app=app, **kwargs)
