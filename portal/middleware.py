"""Per-request tenancy: which firm and role the logged-in person acts in, and MFA enforcement."""

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db.models import Exists, OuterRef
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.module_loading import import_string

from .audit import client_ip, current_ip
from .models import FIRM_ROLES, Membership

CURRENT_FIRM_SESSION_KEY = "portal.current_firm"


class MembershipMiddleware:
    """Sets `request.membership` and `request.firm` for every request (None when absent).

    Membership is read on every request, so deactivating a member ends their sessions at
    once: their next request finds no active membership and is logged out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_ip.set(client_ip(request))
        try:
            request.membership = None
            request.firm = None
            if request.user.is_authenticated:
                response = self._attach_membership(request)
                if response is not None:
                    return response
            if request.firm is not None:
                # Every time a person sees is in their firm's zone (providers see it too).
                timezone.activate(request.firm.zone)
            return self.get_response(request)
        finally:
            timezone.deactivate()
            current_ip.reset(token)

    def _attach_membership(self, request):
        # One query brings what every page needs about the person: their firm and role,
        # whether they have a second factor, and what the apps above ask to bring along
        # (settings.MEMBERSHIP_ANNOTATIONS: the unread notifications).
        memberships = list(
            Membership.objects.filter(user=request.user)
            .select_related("firm")
            .annotate(
                has_second_factor=Exists(second_factors().filter(user=OuterRef("user"))),
                **membership_annotations(),
            )
            .order_by("created_at", "id")
        )
        active = [m for m in memberships if m.is_active]
        if memberships and not active and not request.user.is_staff:
            logout(request)
            messages.error(request, "Your access has been removed. Ask your firm's admin.")
            return redirect("account_login")
        chosen = request.session.get(CURRENT_FIRM_SESSION_KEY)
        membership = next((m for m in active if str(m.firm.public_id) == chosen), None)
        if membership is None and active:
            membership = active[0]
        if membership is not None:
            membership.user = request.user  # the same person; saves a query wherever it is read
            request.membership = membership
            request.firm = membership.firm
        return None


def membership_annotations() -> dict:
    """Expressions of the apps above the tenancy core, named in settings so that this layer
    imports none of them: each is a function of the user's column, evaluated in the membership
    query (one query per request, not one per app)."""
    return {
        name: import_string(path)(OuterRef("user"))
        for name, path in settings.MEMBERSHIP_ANNOTATIONS.items()
    }


def second_factors():
    return Authenticator.objects.filter(
        type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
    )


def has_second_factor(request) -> bool:
    membership = request.membership
    if membership is not None:
        return membership.has_second_factor  # read with the membership, this request
    return second_factors().filter(user=request.user).exists()


def mfa_required_for(request) -> bool:
    """Firm admins, staff and platform operators must use a second factor; providers may."""
    if request.user.is_staff:
        return True
    membership = request.membership
    return membership is not None and membership.role in FIRM_ROLES


# What a person who must enrol may still reach: enrolment itself, logout, static files.
MFA_ENROLMENT_URL_NAMES = (
    "mfa_index",
    "mfa_activate_totp",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "mfa_download_recovery_codes",
    "mfa_add_webauthn",
    "account_logout",
    "account_reauthenticate",
    "mfa_reauthenticate",
)


class RequireMFAMiddleware:
    """allauth does not force MFA on anyone; this sends people who must have it to enrolment."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._allowed_paths = None

    def allowed_paths(self):
        if self._allowed_paths is None:
            self._allowed_paths = {reverse(name) for name in MFA_ENROLMENT_URL_NAMES}
        return self._allowed_paths

    def __call__(self, request):
        if (
            request.user.is_authenticated
            and mfa_required_for(request)
            and not request.path.startswith("/static/")
            and request.path not in self.allowed_paths()
            and not has_second_factor(request)
        ):
            messages.info(
                request,
                "Your firm requires two-factor authentication. Set up an authenticator app "
                "to continue.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)


class NoStoreForSignedInMiddleware:
    """Nothing a signed-in person sees is kept by a browser or a proxy cache.

    Pages and exports carry client PHI; `Cache-Control: no-store` on every authenticated
    response keeps them out of shared caches and off the disk of a shared computer.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated:
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response
