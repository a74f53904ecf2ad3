"""What monitors and people see when something is down (issue 12, finding 7)."""

import pytest
from django.db import OperationalError
from django.test import Client, override_settings
from django.urls import path, reverse

from portal.urls import urlpatterns as portal_urlpatterns

pytestmark = pytest.mark.django_db


def test_liveness_needs_no_login_and_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(reverse("health_live"))
    assert response.status_code == 200


def test_readiness_checks_the_database_and_the_broker(client):
    response = client.get(reverse("health_ready"))
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
def test_readiness_is_503_when_the_broker_is_down(client):
    response = client.get(reverse("health_ready"))
    assert response.status_code == 503
    assert response.json()["broker"] != "ok"


def database_down(request):
    raise OperationalError("connection to server failed")


urlpatterns = [*portal_urlpatterns, path("boom/", database_down)]
handler500 = "portal.views.server_error"  # as in portal/urls.py


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_database_outage_is_a_503_that_tells_the_truth():
    from portal import urls

    assert urls.handler500 == handler500
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    text = response.content.decode()
    assert "could not confirm your change" in text
    assert "not saved" not in text
