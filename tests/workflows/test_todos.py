"""The provider's to-do page, the "I've done this" button, and delegates' read-only view."""

import pytest
from django.urls import reverse

from clients.models import Profile
from notifications.models import Notification
from workflows import services
from workflows.models import AccessGrant, SignatureRound

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_requests(rivera, northwind_staff):
    return [
        services.grant_create(profile=profile, method="connection_request", actor=northwind_staff)
        for profile in rivera.profiles.order_by("kind")
    ]


@pytest.fixture
def round_two(rivera, northwind_staff):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.round_confirm(signature_round=first, actor=northwind_staff)
    return services.round_open_revision(
        enrollment=enrollment, actor=northwind_staff, reason="Practice address corrected"
    )


def test_provider_sees_one_approval_per_profile_with_steps_and_countdown(
    as_user, provider, two_requests
):
    response = as_user(provider).get(reverse("dashboard"))
    page = response.content.decode()
    assert page.count("Approve the pending connection") == 2
    assert "Individual profile" in page
    assert "Rivera Therapy PLLC" in page
    assert "My Pending Connections" in page
    assert "Approve All Selected" in page
    assert "30 days left" in page


def test_done_sends_the_step_to_staff_and_leaves_the_list(as_user, provider, two_requests):
    grant = two_requests[0]
    client = as_user(provider)
    response = client.post(reverse("todo_done", args=["grant", grant.public_id]), follow=True)
    assert b"Thank you" in response.content
    grant.refresh_from_db()
    assert grant.state == AccessGrant.State.PROVIDER_SAYS_DONE
    page = response.content.decode()
    assert page.count("/done/") == 1  # one left to do, one being checked
    assert "Your credentialer is checking" in page


def test_double_submit_is_a_message_not_an_error(as_user, provider, two_requests):
    url = reverse("todo_done", args=["grant", two_requests[0].public_id])
    client = as_user(provider)
    client.post(url)
    response = client.post(url, follow=True)
    assert response.status_code == 200
    assert b"already told us" in response.content


def test_sign_round_two_shows_the_reason(as_user, provider, round_two):
    page = as_user(provider).get(reverse("dashboard")).content.decode()
    assert "Sign round 2 of your application" in page
    assert "Practice address corrected" in page
    assert "Manage Signatures" in page


def test_delegate_sees_signing_read_only_with_whom_to_ask(as_user, delegate, round_two):
    page = as_user(delegate).get(reverse("dashboard")).content.decode()
    assert "Sign round 2" in page
    assert "Only Ana Rivera, LCSW can sign this, as Provider." in page
    signer = round_two.signers.get()
    assert reverse("todo_done", args=["signer", signer.public_id]) not in page


def test_the_rule_holds_on_the_server_not_only_in_the_page(as_user, delegate, round_two):
    response = as_user(delegate).post(
        reverse("todo_done", args=["signer", round_two.signers.get().public_id]), follow=True
    )
    assert b"Only Ana Rivera, LCSW can sign this" in response.content
    round_two.refresh_from_db()
    assert round_two.state == SignatureRound.State.AWAITING_SIGNATURE


def test_access_manager_delegate_may_approve_a_connection(as_user, delegate, two_requests):
    grant = two_requests[0]
    as_user(delegate).post(reverse("todo_done", args=["grant", grant.public_id]))
    grant.refresh_from_db()
    assert grant.state == AccessGrant.State.PROVIDER_SAYS_DONE


def test_another_providers_step_is_not_found(as_user, northwind, northwind_staff, two_requests):
    from tests.clients.factories import give_portal_account, make_client

    other = make_client(northwind, actor=northwind_staff)
    stranger = give_portal_account(other)
    response = as_user(stranger).post(
        reverse("todo_done", args=["grant", two_requests[0].public_id])
    )
    assert response.status_code == 404


def test_empty_state_says_what_happens_next(as_user, provider):
    page = as_user(provider).get(reverse("dashboard")).content.decode()
    assert "Nothing to do right now" in page
    assert "we will email you" in page


def test_one_i_and_a_login_per_person_one_to_do_each(as_user, provider, rivera, northwind_staff):
    """Issue 10, section 6: a provider with a PLLC gets one "reset your I&A password" to-do,
    not two; regaining control is a to-do with its own "I've done this", checked by staff."""
    from clients.services import client_update_ia

    client_update_ia(
        client=rivera,
        actor=northwind_staff,
        ia_controller="someone_else",
        ia_controller_note="Former biller",
        password_reset_likely=True,
    )
    browser = as_user(provider)
    page = browser.get(reverse("dashboard")).content.decode()
    assert page.count("Regain control of your I&amp;A account") == 1
    assert page.count("Reset your I&amp;A password") == 1
    assert "Someone else (Former biller) controls your login" in page
    # The password helper is a field with no name, outside any form: nothing is posted.
    assert "data-ia-password-input" in page
    helper = page[page.index("data-ia-password-helper") :]
    helper = helper[: helper.index("</div>")]
    assert "name=" not in helper

    browser.post(reverse("todo_done", args=["ia-regain", rivera.public_id]))
    rivera.refresh_from_db()
    assert rivera.ia_controller == "regain_claimed"
    assert Notification.objects.filter(kind="ia.verify").exists()
    response = browser.post(reverse("todo_done", args=["ia-regain", rivera.public_id]), follow=True)
    assert b"already told us" in response.content
    browser.post(reverse("todo_done", args=["ia-password", rivera.public_id]))
    rivera.refresh_from_db()
    assert not rivera.password_reset_likely
    page = browser.get(reverse("dashboard")).content.decode()
    assert "Reset your I&amp;A password" not in page


def test_only_the_provider_regains_their_own_login(as_user, delegate, rivera, northwind_staff):
    from clients.services import client_update_ia

    client_update_ia(
        client=rivera,
        actor=northwind_staff,
        ia_controller="someone_else",
        ia_controller_note="",
        password_reset_likely=False,
    )
    response = as_user(delegate).post(
        reverse("todo_done", args=["ia-regain", rivera.public_id]), follow=True
    )
    assert b"Only the provider can do this" in response.content
    rivera.refresh_from_db()
    assert rivera.ia_controller == "someone_else"


def test_provider_todos_query_budget(
    as_user, provider, rivera, two_requests, round_two, django_assert_max_num_queries
):
    client = as_user(provider)
    # session, user, membership+firm, clients+firm+assigned staff, profiles+organizations,
    # grants, enrollments, rounds, signers+officials, development requests, delegates,
    # delegate roles, unread count (no MFA check)
    with django_assert_max_num_queries(13) as queries:
        assert client.get(reverse("dashboard")).status_code == 200
    small = len(queries.captured_queries)
    from tests.clients.factories import add_organization

    staff = rivera.assigned_staff
    for index in range(5):  # more profiles, each with a pending request, more signers and
        # development requests the provider must answer
        organization = add_organization(rivera, actor=staff, name=f"Group {index}")
        services.grant_create(
            profile=organization.profile,
            method="add_staff",
            requested_role="access_manager",
            actor=staff,
        )
        enrollment = services.enrollment_create(
            profile=organization.profile, kind="initial", actor=staff
        )
        services.enrollment_change_state(enrollment=enrollment, to="submitted", actor=staff)
        services.development_open(
            enrollment=enrollment, asked=f"Document {index}", holder="provider", actor=staff
        )
        services.round_open_revision(enrollment=enrollment, actor=staff, reason="Fixed")
    with django_assert_max_num_queries(small):
        assert client.get(reverse("dashboard")).status_code == 200


def test_provider_manages_the_people_who_act_for_them(as_user, provider, rivera):
    page = as_user(provider).get(reverse("dashboard")).content.decode()
    assert "People at your office who can help" in page
    assert "Olivia Office" in page
    assert "Access Manager on Individual profile" in page
    assert reverse("delegate_add", args=[rivera.public_id]) in page


def test_a_delegate_does_not_manage_delegates(as_user, delegate):
    page = as_user(delegate).get(reverse("dashboard")).content.decode()
    assert "People at your office who can help" not in page


def test_access_steps_name_the_firm_as_registered_in_i_and_a(
    as_user, provider, rivera, northwind, northwind_staff
):
    """Issue 10, section 6: the surrogate search uses the name the firm is registered
    under in I&A (or its NPI); "I can't find you" asks staff for a request instead; the
    add-staff steps say who may grant Access Manager; every access step says what access
    allows and not."""
    from portal.npi import npi_with_check_digit

    northwind.ia_name = "Northwind Credentialing Services LLC"
    northwind.npi = npi_with_check_digit("155555555")
    northwind.save()
    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    pllc = rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)
    surrogate = services.grant_create(
        profile=individual, method="add_surrogate", actor=northwind_staff
    )
    services.grant_create(
        profile=pllc, method="add_staff", requested_role="access_manager", actor=northwind_staff
    )
    browser = as_user(provider)
    page = browser.get(reverse("dashboard")).content.decode()
    assert "enter “Northwind Credentialing Services LLC”, or search by our NPI, " in page
    assert northwind.npi in page
    assert "Only an Authorized Official can give the Access Manager role" in page
    assert "It does not let us sign for you, represent you legally or change your NPI" in page
    assert "Never share your CMS login" in page
    email = Notification.objects.get(
        kind="grant.requested",
        subject_id=str(surrogate.public_id),
        channel="email",
        to_email=rivera.email,
    )
    assert "Northwind Credentialing Services LLC" in email.body_text
    assert "Good to know" in email.body_text

    response = browser.post(reverse("todo_firm_not_found", args=[surrogate.public_id]), follow=True)
    assert b"we will send you a request to approve instead" in response.content
    alert = Notification.objects.get(kind="grant.firm_not_found", channel="email")
    assert "can't find Northwind Credentialing Services LLC in I&A" in alert.title


def test_steps_in_cms_link_to_where_they_start(as_user, provider, rivera, northwind_staff):
    """Issue 13: every step in I&A or PECOS links to the CMS login where it starts, on the
    step's own words, opened in a new tab; the emails carry the same links."""
    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    grant = services.grant_create(
        profile=individual, method="connection_request", actor=northwind_staff
    )
    enrollment = services.enrollment_create(
        profile=individual, kind="initial", actor=northwind_staff
    )
    services.round_open(enrollment=enrollment, actor=northwind_staff)
    page = as_user(provider).get(reverse("dashboard")).content.decode()
    assert (
        '<a href="https://nppes.cms.hhs.gov/IAWeb/login.do" target="_blank" '
        'rel="noopener noreferrer">Log into the CMS Identity &amp; Access (I&amp;A) system'
    ) in page
    assert '<a href="https://pecos.cms.hhs.gov/pecos/login.do" target="_blank"' in page
    email = Notification.objects.get(
        kind="grant.requested",
        subject_id=str(grant.public_id),
        channel="email",
        to_email=rivera.email,
    )
    assert (
        "Log into the CMS Identity & Access (I&A) system (https://nppes.cms.hhs.gov/IAWeb/login.do)"
        in email.body_text
    )
    assert 'href="https://nppes.cms.hhs.gov/IAWeb/login.do"' in email.body_html
    assert "opens CMS in a new tab" not in email.body_html


def test_undo_within_ten_minutes_of_ive_done_this(as_user, provider, rivera, northwind_staff):
    """Issue 13: a mis-tap on "I've done this" can be taken back for 10 minutes; the step
    waits for the provider again, with its reminders; after that, staff are told instead."""
    import time_machine
    from django.utils import timezone

    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    grant = services.grant_create(
        profile=individual, method="connection_request", actor=northwind_staff
    )
    enrollment = services.enrollment_create(
        profile=individual, kind="initial", actor=northwind_staff
    )
    signature_round = services.round_open(enrollment=enrollment, actor=northwind_staff)
    signer = signature_round.signers.get()
    browser = as_user(provider)
    browser.post(reverse("todo_done", args=["grant", grant.public_id]))
    browser.post(reverse("todo_done", args=["signer", signer.public_id]))
    page = browser.get(reverse("dashboard")).content.decode()
    assert reverse("todo_undo", args=["grant", grant.public_id]) in page
    assert reverse("todo_undo", args=["signer", signer.public_id]) in page

    response = browser.post(reverse("todo_undo", args=["signer", signer.public_id]), follow=True)
    assert b"Undone: it is back on your to-do list." in response.content
    signer.refresh_from_db()
    signature_round.refresh_from_db()
    assert signer.state == "awaiting"
    assert signature_round.state == SignatureRound.State.AWAITING_SIGNATURE
    assert Notification.objects.filter(
        kind="round.reminder", subject_id=str(signer.public_id), state="scheduled"
    ).exists()
    response = browser.post(reverse("todo_undo", args=["signer", signer.public_id]), follow=True)
    assert b"Nothing to undo" in response.content

    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=11)):
        page = browser.get(reverse("dashboard")).content.decode()
        assert reverse("todo_undo", args=["grant", grant.public_id]) not in page
        response = browser.post(reverse("todo_undo", args=["grant", grant.public_id]), follow=True)
    assert b"too late to undo" in response.content
    grant.refresh_from_db()
    assert grant.state == AccessGrant.State.PROVIDER_SAYS_DONE


def test_undo_is_refused_to_whoever_may_not_do_the_step(
    as_user, provider, delegate, rivera, northwind_staff
):
    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    enrollment = services.enrollment_create(
        profile=individual, kind="initial", actor=northwind_staff
    )
    signer = services.round_open(enrollment=enrollment, actor=northwind_staff).signers.get()
    as_user(provider).post(reverse("todo_done", args=["signer", signer.public_id]))
    response = as_user(delegate).post(
        reverse("todo_undo", args=["signer", signer.public_id]), follow=True
    )
    assert b"Only Ana Rivera, LCSW can sign this" in response.content
    signer.refresh_from_db()
    assert signer.state == "says_signed"
    assert (
        as_user(provider)
        .post(reverse("todo_undo", args=["ia-regain", rivera.public_id]))
        .status_code
        == 404
    )
