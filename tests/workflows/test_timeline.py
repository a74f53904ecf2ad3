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


def test_the_timeline_filters_by_profile_and_a_junk_filter_shows_everything(
    as_user, rivera, northwind_staff
):
    individual = rivera.profiles.get(kind="individual")
    pllc = rivera.profiles.get(kind="organizational")
    for profile in (individual, pllc):
        workflow_services.grant_create(
            profile=profile, method="connection_request", actor=northwind_staff, sent_on=None
        )
    workflow_services.enrollment_create(profile=pllc, kind="initial", actor=northwind_staff)
    browser = as_user(northwind_staff)
    url = reverse("client_detail", args=[rivera.public_id])

    def timeline(response):
        text = response.content.decode()
        return text[text.index('id="timeline-title"') :]

    everything = timeline(browser.get(url))
    assert "(Individual profile)" in everything
    assert "(Rivera Therapy PLLC)" in everything
    assert "added the client" in everything

    only_pllc = timeline(browser.get(url, {"profile": str(pllc.public_id)}))
    assert "Connection request from the firm (Rivera Therapy PLLC)" in only_pllc
    assert "Initial enrollment (Rivera Therapy PLLC)" in only_pllc
    assert "(Individual profile)" not in only_pllc
    assert "added the client" not in only_pllc
    assert f'href="?profile={pllc.public_id}#timeline-title" aria-current="true"' in only_pllc

    junk = browser.get(url, {"profile": "not-a-profile"})
    assert junk.status_code == 200
    assert "That profile filter was not recognised" in junk.content.decode()
    assert "(Individual profile)" in timeline(junk)
    other_firms_profile = browser.get(url, {"profile": "6f1c1f0e-0000-4000-8000-000000000000"})
    assert "(Individual profile)" in timeline(other_firms_profile)


def test_the_client_page_head_says_what_is_open_late_and_who_holds_it(
    as_user, rivera, northwind_staff
):
    from datetime import timedelta

    from django.utils import timezone

    from workflows.models import AccessGrant

    individual = rivera.profiles.get(kind="individual")
    pllc = rivera.profiles.get(kind="organizational")
    late = workflow_services.grant_create(
        profile=individual, method="connection_request", actor=northwind_staff, sent_on=None
    )
    AccessGrant.objects.filter(pk=late.pk).update(deadline=timezone.now() - timedelta(days=2))
    to_verify = workflow_services.grant_create(
        profile=pllc, method="connection_request", actor=northwind_staff, sent_on=None
    )
    AccessGrant.objects.filter(pk=to_verify.pk).update(
        state=AccessGrant.State.PROVIDER_SAYS_DONE  # the firm holds it: verify
    )

    page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    head = page.content.decode().split('class="page-actions"')[0]
    assert "<strong>2</strong> open items" in head
    assert '<span class="badge badge-danger">1 overdue</span>' in head
    assert "Ana holds 1" in head  # staff pages speak about the provider
    assert "Firm holds 1" in head
    assert "Next: Access · Individual profile" in head
    assert "2 days overdue" in head
    assert f"Assigned to {northwind_staff.display_name}" in head


def test_the_staff_client_page_speaks_about_the_provider(as_user, rivera, northwind_staff):
    """Issue 13, voice: staff read "Sign round 1 of Ana's application", the provider reads
    "Sign round 1 of your application"."""
    individual = rivera.profiles.get(kind="individual")
    enrollment = workflow_services.enrollment_create(
        profile=individual, kind="initial", actor=northwind_staff
    )
    workflow_services.round_open(enrollment=enrollment, actor=northwind_staff)
    staff_page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    assert "What Ana has to do" in staff_page.content.decode()
    assert "Sign round 1 of Ana&#x27;s application" in staff_page.content.decode()
    assert "of your application" not in staff_page.content.decode()
    provider_page = as_user(rivera.user).get(reverse("dashboard"))
    assert "Sign round 1 of your application" in provider_page.content.decode()
