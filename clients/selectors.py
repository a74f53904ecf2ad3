"""Which clients a person may see, and the one way views fetch a client."""

from django.db.models import Q, QuerySet
from django.http import Http404

from portal.models import Membership

from .models import Client


def clients_visible_to(membership: Membership | None) -> QuerySet:
    """Firm admins and staff: the firm's clients. Providers: their own record. Delegates: the
    clients that named them (and have not removed them)."""
    if membership is None or not membership.is_active:
        return Client.objects.none()
    queryset = Client.objects.filter(firm=membership.firm)
    if membership.works_for_firm:
        return queryset
    user = membership.user
    return queryset.filter(
        Q(user=user) | Q(delegates__user=user, delegates__is_active=True)
    ).distinct()


def get_client_for(request, public_id, queryset: QuerySet | None = None) -> Client:
    """The client `public_id` if the requester may see it; 404 otherwise, as for a missing one."""
    visible = clients_visible_to(request.membership)
    base = queryset if queryset is not None else Client.objects.all()
    client = base.filter(pk__in=visible.values("pk"), public_id=public_id).first()
    if client is None:
        raise Http404("No such client.")
    return client
