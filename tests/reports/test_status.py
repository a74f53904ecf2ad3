"""The client status report: the printable page, its query budget, emailing it to the
provider, and who may see or send it."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from clients.models import CMSRole, Profile
from notifications import delivery
from notifications.models import Notification
from portal.models import AuditEvent
from reports.status import status_queryset, status_report
from tests.clients.factories import add_delegate, add_organization, make_client
from workflows import services
from workflows.models import Holder
from workflows.rules import Party

pytestmark = pytest.mark.django_db


def status_url(client):
    return reverse("client_status", args=[client.public_id])


def send_url(client):
    return reverse("client_status_send", args=[client.public_id])


def section(page: str, start: str, end: str) -> str:
    """The part of the page between two headings (fails loudly if either is missing)."""
    return page[page.index(start) : page.index(end, page.index(start))]


@pytest.fixture
def busy_rivera(rivera, northwind_staff):
    """Rivera mid-way: the individual profile connected, with an enrollment at the contractor
    and a paper revision round out; the PLLC's request waiting on her, its enrollment held by
    her for a document."""
    staff = northwind_staff
    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    pllc = rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)

    grant = services.grant_create(profile=individual, method="connection_request", actor=staff)
    services.grant_mark_active(grant=grant, actor=staff)
    services.grant_create(profile=pllc, method="connection_request", actor=staff)

    initial = services.enrollment_create(profile=individual, kind="initial", actor=staff)
    first = services.round_open(enrollment=initial, actor=staff)
    services.round_confirm(signature_round=first, actor=staff)  # submitted: with CMS
    services.round_open_revision(
        enrollment=initial, actor=staff, reason="Practice address corrected", method="paper"
    )

    held = services.enrollment_create(profile=pllc, kind="revalidation", actor=staff)
    services.enrollment_update(
        enrollment=held,
        actor=staff,
        holder=Holder.PROVIDER,
        holder_reason="Waiting for the malpractice certificate",
        follow_up_on=None,
        tracking_number="T0123456789",
        assigned_staff=staff,
    )
    change = services.enrollment_create(profile=individual, kind="change", actor=staff)
    services.enrollment_change_state(enrollment=change, to="submitted", actor=staff)
    return rivera


# --- the page -------------------------------------------------------------------------


def test_report_shows_each_profiles_access_and_the_connected_count(
    as_user, northwind_staff, busy_rivera
):
    page = as_user(northwind_staff).get(status_url(busy_rivera)).content.decode()
    assert "Status report: Ana Rivera, LCSW" in page
    assert "1 of 2 profiles connected" in page
    access = section(page, "Profiles and access", "</table>")
    assert "Individual profile" in access
    assert "Connected" in access
    assert "Rivera Therapy PLLC" in access
    assert "Awaiting the provider" in access
    assert access.count("Connection request from the firm") == 2
    pllc_grant = busy_rivera.profiles.get(kind="organizational").access_grants.get()
    zone = busy_rivera.firm.zone
    assert f"{pllc_grant.sent_at.astimezone(zone):%b} " in access  # sent date
    assert f'datetime="{pllc_grant.deadline.astimezone(zone):%Y-%m-%dT%H:%M:%S%z}"' in access


def test_report_shows_enrollments_and_rounds_with_paper_flagged(
    as_user, northwind_staff, busy_rivera
):
    page = as_user(northwind_staff).get(status_url(busy_rivera)).content.decode()
    enrollments = section(page, "Medicare enrollment applications", "</table>")
    assert "Initial enrollment" in enrollments
    assert "Awaiting signature" in enrollments
    assert "Revalidation" in enrollments
    assert "Provider: Waiting for the malpractice certificate" in enrollments
    assert "T0123456789" in enrollments
    assert "Change of information" in enrollments
    assert "CMS / contractor" in enrollments
    assert 'data-label="Days in state">0</td>' in enrollments

    rounds = section(page, ">Signature rounds</h3>", "</table>")
    assert "Initial signature" in rounds
    assert "Signature confirmed" in rounds
    assert "Practice address corrected" in rounds
    assert rounds.count("Wet signature: slower") == 1  # round 2 is on paper, round 1 electronic


def test_days_in_state_count_calendar_days_in_the_firms_zone(northwind_staff, rivera):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    with time_machine.travel(timezone.now() - timedelta(days=12)):
        services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    report = status_report(status_queryset().get(pk=rivera.pk))
    assert [e.days_in_state for e in report.enrollments] == [12]


def test_report_says_what_waits_on_whom(as_user, northwind_staff, busy_rivera):
    page = as_user(northwind_staff).get(status_url(busy_rivera)).content.decode()
    provider = section(page, "Waiting on the provider", "What the firm is doing")
    assert "Approve the pending connection" in provider  # the PLLC's request, with its deadline
    assert "Expires" in provider
    assert "days left" in provider
    assert "Sign round 2 of your application" in provider
    assert "Practice address corrected" in provider
    assert "Signed in ink" in provider
    assert "Waiting for the malpractice certificate" in provider

    firm = section(page, "What the firm is doing", "With CMS / the contractor")
    assert "Nothing open." in firm

    cms = section(page, "With CMS / the contractor", "</section>")
    assert "Change of information · Individual profile: Submitted" in cms


def test_a_step_the_provider_says_is_done_waits_on_the_firm(northwind_staff, busy_rivera):
    grant = busy_rivera.profiles.get(kind="organizational").access_grants.get()
    services.grant_claim_done(
        grant=grant, party=Party(name="Ana Rivera", is_provider=True), actor=busy_rivera.user
    )
    report = status_report(status_queryset().get(pk=busy_rivera.pk))
    assert "Approve the pending connection" not in [todo.title for todo in report.todos]
    assert [(item.label, item.state) for item in report.firm_items] == [
        ("Access · Rivera Therapy PLLC", "Provider says done")
    ]


def test_a_client_with_nothing_open_waits_on_nobody(as_user, northwind, northwind_staff):
    client = make_client(northwind, actor=northwind_staff, last_name="Quiet")
    page = as_user(northwind_staff).get(status_url(client)).content.decode()
    assert "0 of 1 profile connected" in page
    assert "No access requested yet" in page
    assert "No enrollment yet." in page
    assert "Nothing right now." in page
    assert "Nothing with them." in page


def test_page_is_printable_without_inline_code(as_user, northwind_staff, busy_rivera):
    page = as_user(northwind_staff).get(status_url(busy_rivera)).content.decode()
    assert "css/print.css" in page
    assert "<script" not in page
    assert "style=" not in page
    assert page.count("<caption") == 3
    assert 'scope="col"' in page
    assert 'scope="row"' in page


def test_client_page_links_to_the_report_and_the_send_button(as_user, northwind_staff, busy_rivera):
    page = as_user(northwind_staff).get(reverse("client_detail", args=[busy_rivera.public_id]))
    html = page.content.decode()
    assert f'href="{status_url(busy_rivera)}"' in html
    assert f'action="{send_url(busy_rivera)}"' in html


# --- query budget ---------------------------------------------------------------------


def one_profile_client(firm, staff):
    """The smallest client that reaches every prefetch: one profile with one grant, an
    enrollment with a round, a delegate. (Django skips a prefetch with nothing to prefetch
    for, so a client without enrollments or delegates runs fewer queries, never more.)"""
    client = make_client(firm, actor=staff, last_name="Small")
    profile = client.profiles.get()
    services.grant_create(profile=profile, method="connection_request", actor=staff)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=staff)
    services.round_open(enrollment=enrollment, actor=staff)
    add_delegate(
        client, actor=staff, email="desk@small.test", roles={profile: CMSRole.STAFF_END_USER}
    )
    return client


def four_organization_client(rivera, staff):
    """Rivera with four organizations: on every profile an expired request sent again, an
    enrollment past two signature rounds and a second one preparing."""
    for name in ("Rivera Group", "Rivera Holdings LLC", "Rivera Telehealth PLLC"):
        add_organization(rivera, actor=staff, name=name)
    for profile in rivera.profiles.all():
        expired = services.grant_create(profile=profile, method="connection_request", actor=staff)
        services.grant_record_expired(grant=expired, actor=staff)
        services.grant_send_again(grant=expired, actor=staff)
        enrollment = services.enrollment_create(profile=profile, kind="initial", actor=staff)
        first = services.round_open(enrollment=enrollment, actor=staff)
        services.round_confirm(signature_round=first, actor=staff)
        services.round_open_revision(
            enrollment=enrollment, actor=staff, reason="NPI corrected", method="paper"
        )
        services.enrollment_create(profile=profile, kind="revalidation", actor=staff)
    return rivera


@pytest.mark.parametrize("size", ["one profile", "four organizations"])
def test_report_query_budget_does_not_grow(
    as_user, northwind, northwind_staff, rivera, django_assert_max_num_queries, size
):
    if size == "one profile":
        client = one_profile_client(northwind, northwind_staff)
    else:
        client = four_organization_client(rivera, northwind_staff)
        assert client.profiles.count() == 5
    browser = as_user(northwind_staff)
    browser.get(status_url(client))  # warm the session
    # session, user, membership (+firm, second factor, unread count), client (+firm,
    # assigned staff, portal account), profiles+organizations, grants, enrollments, rounds,
    # signers, development requests, officials (when there are organizations), credentials
    # (+kinds, file counts), delegates, delegate roles, the audited read
    with django_assert_max_num_queries(15):
        assert browser.get(status_url(client)).status_code == 200


def test_a_client_with_no_enrollment_or_delegate_costs_no_more(
    as_user, northwind, northwind_staff, django_assert_max_num_queries
):
    client = make_client(northwind, actor=northwind_staff, last_name="Bare")
    browser = as_user(northwind_staff)
    browser.get(status_url(client))
    with django_assert_max_num_queries(10):
        assert browser.get(status_url(client)).status_code == 200


# --- sending --------------------------------------------------------------------------


def test_sending_schedules_one_essential_email_to_the_provider(
    as_user, northwind_staff, busy_rivera
):
    response = as_user(northwind_staff).post(send_url(busy_rivera), follow=True)
    assert response.redirect_chain == [
        (reverse("client_detail", args=[busy_rivera.public_id]), 302)
    ]
    assert "Status report emailed to rivera@clinic.test." in response.content.decode()

    rows = Notification.objects.filter(kind="client.status")
    assert rows.count() == 1  # email only: the provider's portal shows their to-dos live
    row = rows.get()
    assert row.channel == Notification.Channel.EMAIL
    assert row.to_email == "rivera@clinic.test"
    assert row.recipient == busy_rivera.user
    assert (row.subject_type, row.subject_id) == ("client", str(busy_rivera.public_id))
    assert row.essential
    assert row.state == Notification.State.SCHEDULED
    assert row.due_at <= timezone.now()
    assert AuditEvent.objects.filter(
        verb="client.status_sent", client_uuid=busy_rivera.public_id
    ).exists()


def test_the_email_carries_the_status(as_user, northwind_staff, busy_rivera):
    as_user(northwind_staff).post(send_url(busy_rivera))
    delivery.deliver_due()  # with the workflow emails already due
    subject = "Your credentialing status from Northwind Credentialing"
    [email] = [sent for sent in mail.outbox if sent.subject == subject]
    assert email.to == ["rivera@clinic.test"]
    html = email.alternatives[0].content
    for body in (email.body, html):
        assert "Hello Ana" in body
        assert "1 of 2 profiles connected" in body
        assert "Approve the pending connection" in body
        assert "Expires" in body or "expires" in body
        assert "Sign round 2 of your application" in body
        assert "Waiting for the malpractice certificate" in body
        assert "Change of information · Individual profile: Submitted since" in body
        assert "Practice address corrected" in body
        assert (
            "signed in ink (Wet-signed certification statement, mailed to the contractor (MAC))"
            in body
        )
        assert "T0123456789" in body
        assert "http://127.0.0.1:8000/dashboard/" in body


def test_each_send_is_a_new_message(as_user, northwind_staff, rivera):
    browser = as_user(northwind_staff)
    browser.post(send_url(rivera))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        browser.post(send_url(rivera))
    assert Notification.objects.filter(kind="client.status", channel="email").count() == 2


# --- who may ---------------------------------------------------------------------------


def test_another_firms_staff_get_404_and_send_nothing(as_user, bluebird_staff, rivera):
    browser = as_user(bluebird_staff)
    assert browser.get(status_url(rivera)).status_code == 404
    assert browser.post(send_url(rivera)).status_code == 404
    assert not Notification.objects.filter(kind="client.status").exists()


def test_providers_and_delegates_are_refused(as_user, provider, delegate, rivera):
    for user in (provider, delegate):
        browser = as_user(user)
        assert browser.get(status_url(rivera)).status_code == 403
        assert browser.post(send_url(rivera)).status_code == 403
    assert not Notification.objects.filter(kind="client.status").exists()


def test_anonymous_is_sent_to_login(as_user, rivera):
    browser = as_user(None)
    for response in (browser.get(status_url(rivera)), browser.post(send_url(rivera))):
        assert response.status_code == 302
        assert "/accounts/login/" in response.url
    assert not Notification.objects.filter(kind="client.status").exists()


def test_admins_may_see_and_send_too(as_user, northwind_admin, rivera):
    browser = as_user(northwind_admin)
    assert browser.get(status_url(rivera)).status_code == 200
    assert browser.post(send_url(rivera)).status_code == 302
    assert Notification.objects.filter(kind="client.status").count() == 1
