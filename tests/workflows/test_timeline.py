"""The client's timeline reads in sentences, grouped by day in the firm's zone (issue 13)."""

from datetime import date

import pytest
from django.urls import reverse

from clients import services as client_services
from reports import status
from tests.audit_verbs import recorded_verbs
from workflows import credentials, revalidation
from workflows import services as workflow_services
from workflows.timeline import SENTENCES

pytestmark = pytest.mark.django_db


def test_every_verb_on_a_timeline_has_a_sentence():
    verbs = recorded_verbs(workflow_services, client_services, status, credentials, revalidation)
    assert {"grant.sent", "client.status_sent"} <= verbs  # the reader finds them
    assert verbs - set(SENTENCES) == set()


def test_the_client_page_tells_its_history_in_sentences(as_user, rivera, northwind_staff):
    individual = rivera.profiles.get(kind="individual")
    workflow_services.grant_create(
        profile=individual,
        method="connection_request",
        actor=northwind_staff,
        sent_on=None,
    )
    enrollment = workflow_services.enrollment_create(
        profile=individual, kind="initial", actor=northwind_staff
    )
    workflow_services.enrollment_change_state(
        enrollment=enrollment, to="submitted", actor=northwind_staff
    )
    page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    text = page.content.decode()
    name = northwind_staff.display_name
    assert f"{name} sent Connection request from the firm (Individual profile)" in text
    assert "Initial enrollment (Individual profile) is now submitted" in text
    assert "grant.sent" not in text
    assert f"{date.today():%Y}" in text  # the day headings
