"""In a real browser: the access and signature workflows, from the staff side and the provider's.

1. Staff add a client with a PLLC, send a connection request for each profile and invite the
   provider to the portal.
2. The provider, on a phone, logs in by emailed code, sees a to-do per pending connection and
   reports one done.
3. Staff verify the access the provider reported and mark it active.
4. Staff open a revision round; the provider sees what to sign and why.

Each test sets up what it starts from through the services, so it stands on its own.
"""

import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from playwright.sync_api import expect

from portal.models import User
from tests.browser.conftest import PHONE
from tests.clients.factories import make_client
from tests.conftest import totp_code
from tests.portal.factories import PASSWORD
from workflows import services
from workflows.models import AccessGrant, Enrollment
from workflows.rules import Party

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
LOGIN_CODE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)


# --- helpers ----------------------------------------------------------------------------


def wait_for_mail(predicate, *, after: int = 0, timeout: float = 5.0):
    """The first email in mail.outbox (from index `after`) that satisfies `predicate`."""
    deadline = time.monotonic() + timeout
    while True:
        for message in mail.outbox[after:]:
            if predicate(message):
                return message
        if time.monotonic() >= deadline:
            sent = [(m.to, m.subject) for m in mail.outbox]
            raise AssertionError(f"no matching email within {timeout:g}s; outbox: {sent}")
        time.sleep(0.05)


def log_in_staff(
    page, url: str, email: str, *, password: str = PASSWORD, totp_secret: str | None = None
) -> None:
    """Email and password, then the authenticator code: the firm's dashboard."""
    page.goto(f"{url}/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Enter your authenticator code")).to_be_visible()
    page.locator("input[name=code]").fill(totp_code(totp_secret))
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/dashboard/")


def log_in_with_password(page, url: str, email: str) -> None:
    """A provider: email and password, no second factor."""
    page.goto(f"{url}/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/dashboard/")


def log_in_by_code(page, url: str, email: str) -> None:
    """allauth's login by code: ask for a code, read it from the email, type it in."""
    sent_before = len(mail.outbox)
    page.goto(f"{url}/accounts/login/code/")
    page.locator("input[name=email]").fill(email)
    page.get_by_role("button", name="Email me a code").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/code/confirm/"))
    message = wait_for_mail(
        lambda m: m.to == [email] and LOGIN_CODE.search(m.body), after=sent_before
    )
    page.locator("input[name=code]").fill(LOGIN_CODE.search(message.body).group(1))
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/dashboard/")


def profile_section(page, label: str):
    """A profile's card on the client page, named by its heading ("Individual profile"...)."""
    return page.get_by_role("region", name=re.compile(rf"^{re.escape(label)}"))


def todo_card(page, profile_label: str):
    """The to-do card for one profile ("For: <strong>label</strong>")."""
    return page.locator("article.todo").filter(
        has=page.locator(".todo-profile strong").get_by_text(profile_label, exact=True)
    )


def individual(client):
    return client.profiles.get(kind="individual")


def organizational(client):
    return client.profiles.get(kind="organizational")


# --- 1. staff: a new client, two connection requests, the portal invitation -------------


def test_staff_add_client_with_pllc_request_access_and_invite_provider(
    live_server, page, northwind_staff, axe_check
):
    url = live_server.url
    provider_email = "ana.rivera@clinic.test"
    log_in_staff(page, url, northwind_staff.email)

    page.get_by_role("link", name="Add a client").click()
    expect(page.get_by_role("heading", level=1, name="Add a client")).to_be_visible()
    axe_check(page, "add a client form")
    page.get_by_label("First name").fill("Ana")
    page.get_by_label("Last name").fill("Rivera")
    page.get_by_label("Credentials").fill("LCSW")
    page.get_by_label("Individual NPI").fill("1234567893")
    page.get_by_label("Email").fill(provider_email)
    page.get_by_label("Assigned staff member").select_option(label=northwind_staff.display_name)
    page.get_by_role("button", name="Add client").click()

    expect(page.get_by_role("heading", level=1, name="Ana Rivera, LCSW")).to_be_visible()
    expect(page.get_by_text("Ana Rivera, LCSW added.")).to_be_visible()
    expect(page.get_by_text("0 of 1 profile connected")).to_be_visible()

    # The PLLC: a profile of its own.
    organization_form = page.get_by_role("region", name="Add an organization")
    organization_form.get_by_label("Legal name").fill("Rivera Therapy PLLC")
    organization_form.get_by_label("Kind").select_option(label="PLLC")
    organization_form.get_by_role("button", name="Add organization").click()
    expect(page.get_by_text("Rivera Therapy PLLC added:")).to_be_visible()
    expect(page.get_by_text("0 of 2 profiles connected")).to_be_visible()

    # A connection request for each profile.
    for label in ("Individual profile", "Rivera Therapy PLLC"):
        section = profile_section(page, label)
        section.get_by_label("Method").select_option(AccessGrant.Method.CONNECTION_REQUEST)
        section.get_by_role("button", name="Send request").click()
        expect(page.get_by_text(f"Access request for {label} sent")).to_be_visible()

    for label in ("Individual profile", "Rivera Therapy PLLC"):
        section = profile_section(page, label)
        expect(section.get_by_text("Connection request from the firm")).to_be_visible()
        expect(section.get_by_text("Awaiting the provider", exact=True)).to_be_visible()
        expect(section.get_by_role("button", name="Send request")).to_have_count(0)
    provider_todos = page.get_by_role("region", name="What Ana has to do")
    expect(provider_todos.get_by_role("listitem")).to_have_count(2)
    expect(
        provider_todos.get_by_text("Approve the pending connection · Individual profile")
    ).to_be_visible()
    expect(
        provider_todos.get_by_text("Approve the pending connection · Rivera Therapy PLLC")
    ).to_be_visible()

    # The portal invitation.
    page.get_by_role("button", name="Invite Ana to the portal").click()
    expect(page.get_by_text(f"Invitation sent to {provider_email}.")).to_be_visible()
    expect(page.get_by_text("0 of 2 profiles connected")).to_be_visible()
    axe_check(page, "client page with two pending requests")

    invitation = wait_for_mail(lambda m: m.to == [provider_email] and "invited you" in m.subject)
    assert "/invitations/" in invitation.body

    grants = AccessGrant.objects.filter(profile__client__npi="1234567893")
    assert (
        sorted(grants.values_list("state", "method"))
        == [(AccessGrant.State.AWAITING_PROVIDER, AccessGrant.Method.CONNECTION_REQUEST)] * 2
    )


# --- 2. the provider, on a phone: the to-dos, "I've done this" ---------------------------


def test_provider_on_phone_sees_connection_todos_and_reports_one_done(
    live_server, new_context, rivera, northwind_staff, axe_check
):
    # The account as the provider would have named it when accepting the invitation.
    User.objects.filter(pk=rivera.user_id).update(full_name="Ana Rivera")
    for profile in (individual(rivera), organizational(rivera)):
        services.grant_create(
            profile=profile, method=AccessGrant.Method.CONNECTION_REQUEST, actor=northwind_staff
        )
    url = live_server.url
    page = new_context(viewport=PHONE).new_page()

    log_in_by_code(page, url, rivera.email)

    expect(page.get_by_role("heading", level=1, name="Your to-dos")).to_be_visible()
    todos = page.locator("article.todo")
    expect(todos).to_have_count(2)
    for label in ("Individual profile", "Rivera Therapy PLLC"):
        card = todo_card(page, label)
        expect(card.get_by_role("heading", name="Approve the pending connection")).to_be_visible()
        expect(card.get_by_text("My Pending Connections")).to_be_visible()
        expect(card.get_by_text("Approve All Selected")).to_be_visible()
        expect(card.get_by_text("30 days left")).to_be_visible()
        expect(card.get_by_role("button", name="I've done this")).to_be_visible()
    axe_check(page, "provider to-dos (phone)")

    todo_card(page, "Individual profile").get_by_role("button", name="I've done this").click()

    expect(page.get_by_text("Thank you. We'll check it")).to_be_visible()
    expect(todos).to_have_count(1)
    expect(todo_card(page, "Rivera Therapy PLLC")).to_be_visible()
    expect(todo_card(page, "Individual profile")).to_have_count(0)
    waiting = page.locator(".waiting")
    expect(waiting.get_by_role("heading", name="Your credentialer is checking")).to_be_visible()
    expect(
        waiting.get_by_text("Approve the pending connection · Individual profile")
    ).to_be_visible()
    axe_check(page, "provider to-dos after reporting one done (phone)")

    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide in a {inner_width}px view"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "provider-todos.png"), full_page=True)

    assert AccessGrant.objects.get(profile=individual(rivera)).state == (
        AccessGrant.State.PROVIDER_SAYS_DONE
    )
    assert AccessGrant.objects.get(profile=organizational(rivera)).state == (
        AccessGrant.State.AWAITING_PROVIDER
    )


# --- 3. staff verify the reported access -------------------------------------------------


def test_staff_verify_reported_access_and_mark_it_active(
    live_server, page, rivera, northwind, northwind_staff, axe_check
):
    grant = services.grant_create(
        profile=individual(rivera),
        method=AccessGrant.Method.CONNECTION_REQUEST,
        actor=northwind_staff,
    )
    services.grant_claim_done(
        grant=grant,
        party=Party(name=rivera.display_name, is_provider=True),
        actor=rivera.user,
    )
    # A second client waiting on their provider, so the caseload shows more than one row.
    other = make_client(
        northwind, actor=northwind_staff, first_name="Ben", last_name="Okafor", credentials="MD"
    )
    services.grant_create(
        profile=individual(other),
        method=AccessGrant.Method.CONNECTION_REQUEST,
        actor=northwind_staff,
    )
    url = live_server.url

    log_in_staff(page, url, northwind_staff.email)

    expect(page.get_by_role("heading", level=1, name="My clients")).to_be_visible()
    caseload = page.get_by_role("table", name="Clients, most urgent first")
    expect(caseload.get_by_role("row")).to_have_count(3)  # the header and two clients
    rivera_row = caseload.get_by_role("row").filter(has_text="Ana Rivera, LCSW")
    expect(rivera_row.get_by_text("0 of 2 profiles connected")).to_be_visible()
    expect(rivera_row.get_by_text("Provider says done")).to_be_visible()
    axe_check(page, "staff dashboard")
    page.reload()  # without the "signed in" message
    expect(caseload).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "staff-dashboard.png"), full_page=True)

    rivera_row.get_by_role("link", name="Ana Rivera, LCSW").click()
    expect(page.get_by_role("heading", level=1, name="Ana Rivera, LCSW")).to_be_visible()
    expect(page.get_by_text("0 of 2 profiles connected")).to_be_visible()
    section = profile_section(page, "Individual profile")
    expect(section.get_by_text("Provider says done", exact=True)).to_be_visible()
    axe_check(page, "client page, access reported done")

    section.get_by_role("button", name="Verified: mark active").click()

    expect(page.get_by_text("Access marked active.")).to_be_visible()
    expect(page.get_by_text("1 of 2 profiles connected")).to_be_visible()
    section = profile_section(page, "Individual profile")
    expect(section.get_by_text("Active", exact=True)).to_be_visible()
    expect(section.get_by_role("button", name="Verified: mark active")).to_have_count(0)
    axe_check(page, "client page, access active")
    grant.refresh_from_db()
    assert grant.state == AccessGrant.State.ACTIVE


# --- 4. a revision round, from staff to provider ----------------------------------------


def test_staff_open_revision_round_and_provider_sees_what_to_sign(
    live_server, new_context, rivera, northwind_staff, axe_check
):
    enrollment = services.enrollment_create(
        profile=individual(rivera), kind=Enrollment.Kind.INITIAL, actor=northwind_staff
    )
    first_round = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.round_confirm(signature_round=first_round, actor=northwind_staff)
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.SUBMITTED
    url = live_server.url

    staff_page = new_context().new_page()
    log_in_staff(staff_page, url, northwind_staff.email)
    staff_page.goto(f"{url}/clients/{rivera.public_id}/")
    work = profile_section(staff_page, "Individual profile").locator(".enrollment")
    expect(work).to_contain_text("Initial enrollment: Submitted")
    expect(work.get_by_label("What changed (the provider sees this)")).to_be_hidden()
    work.get_by_text("Work on this enrollment").click()
    work.get_by_label("What changed (the provider sees this)").fill("Practice location corrected")
    axe_check(staff_page, "client page, enrollment actions open")
    work.get_by_role("button", name="Open revision round").click()

    expect(
        staff_page.get_by_text("Signature round opened; the provider has been told.")
    ).to_be_visible()
    section = profile_section(staff_page, "Individual profile")
    expect(
        section.get_by_text(re.compile(r"Round 2 .*Practice location corrected"))
    ).to_be_visible()

    provider_page = new_context().new_page()
    log_in_with_password(provider_page, url, rivera.email)
    card = provider_page.locator("article.todo").filter(
        has=provider_page.get_by_role("heading", name="Sign round 2 of your application")
    )
    expect(card).to_be_visible()
    expect(card.get_by_text("Practice location corrected")).to_be_visible()
    expect(card.get_by_text("For: Individual profile")).to_be_visible()
    axe_check(provider_page, "provider to-dos, revision round")
