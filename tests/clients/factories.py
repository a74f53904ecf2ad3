"""Clients are built through the services, as the app builds them (profiles included)."""

import itertools

from clients import services
from clients.models import Client, Organization
from portal.models import Membership, Role
from portal.npi import npi_with_check_digit
from tests.portal.factories import UserFactory

_numbers = itertools.count(100_000_001)


def next_npi() -> str:
    return npi_with_check_digit(str(next(_numbers)))


def make_client(firm, *, actor, assigned_staff=None, **fields) -> Client:
    number = next(_numbers)
    values = {
        "first_name": "Pat",
        "last_name": f"Provider{number}",
        "credentials": "MD",
        "npi": npi_with_check_digit(str(number)),
        "email": f"provider{number}@clinic.test",
    } | fields
    return services.client_create(
        firm=firm, actor=actor, assigned_staff=assigned_staff or actor, **values
    )


def add_organization(
    client, *, actor, name="Rivera Therapy PLLC", provider_is_authorized_official=True
) -> Organization:
    """A solo PLLC: by default the provider is its Authorized Official, as is usual."""
    return services.organization_add(
        client=client,
        legal_name=name,
        kind=Organization.Kind.PLLC,
        npi=next_npi(),
        actor=actor,
        provider_is_authorized_official=provider_is_authorized_official,
    )


def give_portal_account(client, **user_fields):
    """The provider accepted their invitation: an account with the client role, linked."""
    user = UserFactory(email=client.email, totp=False, **user_fields)
    Membership.objects.create(user=user, firm=client.firm, role=Role.CLIENT)
    Client.objects.filter(pk=client.pk).update(user=user)
    client.user = user
    return user


def add_delegate(client, *, actor, email, roles: dict, with_account=True):
    delegate = services.delegate_save(
        client=client, actor=actor, name="Olivia Office", email=email, roles=roles
    )
    if with_account:
        user = UserFactory(email=email, totp=False)
        Membership.objects.create(user=user, firm=client.firm, role=Role.CLIENT)
        type(delegate).objects.filter(pk=delegate.pk).update(user=user)
        delegate.user = user
    return delegate
