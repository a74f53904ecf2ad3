"""Which clients a person may see, and the one way views fetch a client."""

from urllib.parse import urlsplit

from django.db.models import CharField, Exists, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Concat
from django.http import Http404
from django.urls import Resolver404, resolve

from portal.models import Membership

from .models import Client, Delegate


def clients_visible_to(membership: Membership | None) -> QuerySet:
    """Firm admins and staff: the firm's clients. Providers: their own record. Delegates: the
    clients that named them (and have not removed them)."""
    if membership is None or not membership.is_active:
        return Client.objects.none()
    queryset = Client.objects.filter(firm=membership.firm)
    if membership.works_for_firm:
        return queryset
    user = membership.user
    # Two indexed lookups joined by UNION (an OR across the delegates join would read every
    # client of the firm: the cost would grow with the firm, not with the person).
    own = Client.objects.filter(user=user).values("pk")
    named = Delegate.objects.filter(user=user, is_active=True).values("client_id")
    return queryset.filter(pk__in=own.union(named))


def get_client_for(request, public_id, queryset: QuerySet | None = None) -> Client:
    """The client `public_id` if the requester may see it; 404 otherwise, as for a missing one."""
    visible = clients_visible_to(request.membership)
    base = queryset if queryset is not None else Client.objects.all()
    client = base.filter(pk__in=visible.values("pk"), public_id=public_id).first()
    if client is None:
        raise Http404("No such client.")
    return client


def is_provider_for(user_ref) -> Exists:
    """Whether the member is a provider (a client's own account) in the membership's firm: an
    expression the membership query brings along (settings.MEMBERSHIP_ANNOTATIONS)."""
    return Exists(Client.objects.filter(user=user_ref, firm=OuterRef("firm")))


def office_for(user_ref) -> Subquery:
    """The provider a delegate acts for, by name ("Ana Rivera"; the first by surname when
    several), in the membership's firm."""
    return Subquery(
        Delegate.objects.filter(user=user_ref, firm=OuterRef("firm"), is_active=True)
        .order_by("client__last_name", "client__first_name")
        .values(
            provider_name=Concat(
                "client__first_name", Value(" "), "client__last_name", output_field=CharField()
            )
        )[:1]
    )


def client_names_for_links(firm, paths) -> dict[str, str]:
    """Which of these links open a client's page in this firm, with the client's name
    ("/clients/<id>/" -> "Ana Rivera, LCSW"); other links are left out. One query, none when
    no link is a client's page: how the notification centre groups by client
    (settings.NOTIFICATION_LINK_LABELS; notifications store the link, not the client)."""
    wanted: dict = {}
    for path in paths:
        try:
            match = resolve(urlsplit(path).path)
        except Resolver404:
            continue
        if match.url_name == "client_detail":
            wanted.setdefault(match.kwargs["public_id"], []).append(path)
    if not wanted or firm is None:
        return {}
    clients = Client.objects.filter(firm=firm, public_id__in=wanted).only(
        "public_id", "first_name", "last_name", "credentials"
    )
    return {path: client.display_name for client in clients for path in wanted[client.public_id]}
