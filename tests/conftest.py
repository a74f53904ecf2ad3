"""Personas, built once per test: the people every view is tested as.

northwind_admin, northwind_staff (firm A), bluebird_staff (firm B), deactivated (a former
Northwind member), operator (platform superuser), anonymous. Each has TOTP enrolled where
their role requires it, so tests reach pages instead of the enrolment redirect.
"""

import os

import pytest
from django.test import Client

from portal.models import Role
from tests.portal.factories import FirmFactory, MembershipFactory, UserFactory

pytest_plugins = ["tests.smtp_sink", "tests.worker"]

# Services the suite needs. Locally a missing one skips its tests; in CI (REQUIRE_SERVICES=1)
# it fails them, so nothing is silently not run.
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"


def skip_or_fail(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture
def northwind(db):
    return FirmFactory(name="Northwind Credentialing", slug="northwind")


@pytest.fixture
def bluebird(db):
    return FirmFactory(name="Bluebird Credentialing", slug="bluebird")


@pytest.fixture
def northwind_admin(northwind):
    return MembershipFactory(
        firm=northwind, role=Role.ADMIN, user__email="admin@northwind.test"
    ).user


@pytest.fixture
def northwind_staff(northwind):
    return MembershipFactory(
        firm=northwind, role=Role.STAFF, user__email="staff@northwind.test"
    ).user


@pytest.fixture
def bluebird_staff(bluebird):
    return MembershipFactory(firm=bluebird, role=Role.STAFF, user__email="staff@bluebird.test").user


@pytest.fixture
def bluebird_admin(bluebird):
    return MembershipFactory(firm=bluebird, role=Role.ADMIN, user__email="admin@bluebird.test").user


@pytest.fixture
def deactivated(northwind):
    return MembershipFactory(
        firm=northwind, role=Role.STAFF, is_active=False, user__email="gone@northwind.test"
    ).user


@pytest.fixture
def operator(db):
    return UserFactory(email="operator@platform.test", is_staff=True, is_superuser=True, totp=True)


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def as_user():
    return client_for


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits and used TOTP codes live in the cache; every test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _private_credential_storage(settings, tmp_path):
    """Credential files a test stores go to its own folder, never the developer's var/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "credentials": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "credentials"), "base_url": None},
        },
    }


def totp_code(secret: str | None = None) -> str:
    """The authenticator app's current code, as a person would type it.

    allauth accepts only the current 30 s step (MFA_TOTP_TOLERANCE is 0), so a code read in
    the last seconds of a step could expire on its way to the server: wait for the next one.
    allauth also refuses a code the same user already used in its window; a test sends one
    code per user and step.
    """
    import time

    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    from tests.portal.factories import TOTP_SECRET

    period = 30
    if period - time.time() % period < 3:
        time.sleep(period - time.time() % period + 0.1)
    return format_hotp_value(hotp_value(secret or TOTP_SECRET, int(time.time()) // period))


# --- providers and delegates (the workflows issue) --------------------------------------


@pytest.fixture
def rivera(northwind, northwind_staff):
    """Northwind's provider with a PLLC: two profiles; a portal account; an office manager
    who is Access Manager on both profiles."""
    from clients.models import CMSRole
    from tests.clients.factories import (
        add_delegate,
        add_organization,
        give_portal_account,
        make_client,
    )

    client = make_client(
        northwind,
        actor=northwind_staff,
        first_name="Ana",
        last_name="Rivera",
        credentials="LCSW",
        email="rivera@clinic.test",
    )
    organization = add_organization(client, actor=northwind_staff)
    give_portal_account(client)
    individual = client.profiles.get(kind="individual")
    add_delegate(
        client,
        actor=northwind_staff,
        email="office@rivera.test",
        roles={individual: CMSRole.ACCESS_MANAGER, organization.profile: CMSRole.ACCESS_MANAGER},
    )
    return client


@pytest.fixture
def provider(rivera):
    return rivera.user


@pytest.fixture
def delegate(rivera):
    return rivera.delegates.get().user
