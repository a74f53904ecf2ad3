"""Login rate limits behind the reverse proxy (issue 11, finding 4) and a cache outage
(issue 12, finding 3)."""

import logging

import pytest
from django.test import RequestFactory, override_settings
from django.urls import reverse

from portal.audit import client_ip

pytestmark = pytest.mark.django_db


def request_from_proxy(forwarded_for: str):
    return RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded_for)


@override_settings(ALLAUTH_TRUSTED_PROXY_COUNT=1)
def test_login_rate_limits_key_on_the_client_behind_the_trusted_proxy():
    assert client_ip(request_from_proxy("203.0.113.7")) == "203.0.113.7"
    # A client cannot choose its address by sending a header of its own: the proxy appends
    # what it saw, and the trusted count picks that entry.
    assert client_ip(request_from_proxy("198.51.100.1, 203.0.113.7")) == "203.0.113.7"


def test_without_a_trusted_proxy_the_forwarded_header_is_ignored():
    assert client_ip(request_from_proxy("203.0.113.7")) == "10.0.0.2"


@override_settings(ALLAUTH_TRUSTED_PROXY_COUNT=1, ACCOUNT_RATE_LIMITS={"login_failed": "3/m/ip"})
def test_one_clients_failed_logins_do_not_lock_out_another_behind_the_proxy(
    client, northwind_staff
):
    from tests.portal.factories import PASSWORD

    for _ in range(5):
        client.post(
            reverse("account_login"),
            {"login": northwind_staff.email, "password": "wrong"},
            HTTP_X_FORWARDED_FOR="203.0.113.66",
        )
    response = client.post(
        reverse("account_login"),
        {"login": northwind_staff.email, "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    assert response.status_code == 302  # on to the second factor, not rate limited


DEAD_REDIS = {
    "default": {
        "BACKEND": "portal.cache.ResilientRedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
}


@override_settings(CACHES=DEAD_REDIS)
def test_a_redis_cache_outage_degrades_login_and_the_stuck_report(
    client, as_user, northwind_admin, northwind_staff, caplog
):
    from tests.portal.factories import PASSWORD

    with caplog.at_level(logging.WARNING, logger="portal.cache"):
        response = client.post(
            reverse("account_login"), {"login": northwind_staff.email, "password": PASSWORD}
        )
        assert response.status_code == 302
        assert as_user(northwind_admin).get(reverse("stuck_report")).status_code == 200
    outage_lines = [r for r in caplog.records if "cache unavailable" in r.getMessage()]
    assert len(outage_lines) == 1  # logged once, not per request
