"""The one way views reach tenant data.

Every view of firm data goes through these helpers: they scope by the request's firm and
role, and answer 404 for another firm's object exactly as for a missing one.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Invitation, Membership, Role


def member_required(*roles: str):
    """Logged in, an active member of the current firm, and (if given) holding one of `roles`.

    Anonymous => login page; logged in without a membership or with another role => 403.
    """

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None:
                raise PermissionDenied("You are not a member of a firm.")
            if roles and membership.role not in roles:
                raise PermissionDenied("Your role does not allow this page.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


admin_required = member_required(Role.ADMIN)
firm_member_required = member_required(Role.ADMIN, Role.STAFF)


def get_for_firm(queryset: QuerySet, firm, **lookup):
    """One object of `firm`, or 404: another firm's object is indistinguishable from none."""
    return get_object_or_404(queryset.filter(firm=firm), **lookup)


def get_membership_for(request, public_id) -> Membership:
    return get_for_firm(
        Membership.objects.select_related("user"), request.firm, public_id=public_id
    )


def get_invitation_for(request, public_id) -> Invitation:
    return get_for_firm(Invitation.objects.all(), request.firm, public_id=public_id)
