"""In a real browser: an admin invites a staff member, who joins and enrols TOTP.

The journey crosses every piece the onboarding depends on: allauth's password + TOTP
login, the team page, the invitation email (sent by a Celery task, eager under tests),
the public accept page, the forced TOTP enrolment, and the firm dashboard. axe-core
checks each page a person sees on the way.
"""

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core import mail
from django.test import Client
from playwright.sync_api import expect

from portal.models import Membership, Role
from tests.browser.conftest import PHONE
from tests.conftest import totp_code
from tests.portal.factories import PASSWORD, TOTP_SECRET, FirmFactory, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A new staff member's first, empty dashboard (the README shows the demo's, test_pages_fit.py).
SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "new-staff-dashboard.png"
STAFF_EMAIL = "newstaff@northwind.test"
STAFF_PASSWORD = "Quiet-lantern-harbour-58"


def northwind_admin():
    firm = FirmFactory(name="Northwind", slug="northwind")
    membership = MembershipFactory(
        firm=firm, role=Role.ADMIN, user__email="admin@northwind.test", user__full_name="Ada Admin"
    )
    return membership.user


def invitation_path(message) -> str:
    """The path of the accept link in the invitation email (the link is SITE_URL + path)."""
    match = re.search(r"https?://\S+/invitations/[^\s/]+/", message.body)
    assert match, f"no invitation link in:\n{message.body}"
    assert match.group(0).startswith(settings.SITE_URL)
    return urlsplit(match.group(0)).path


def expect_firm_dashboard(page, url: str, firm_name: str) -> None:
    """The firm's dashboard: its name in the header, the Dashboard tab current, a page title."""
    expect(page).to_have_url(f"{url}/dashboard/")
    expect(
        page.get_by_role("banner").get_by_role("link", name=firm_name, exact=True)
    ).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def wait_for_outbox(count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(mail.outbox) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(mail.outbox) >= count, f"expected {count} email(s), got {len(mail.outbox)}"


def test_admin_invites_staff_who_enrols_totp_and_reaches_dashboard(live_server, page, axe_check):
    northwind_admin()
    url = live_server.url

    # The admin logs in: email and password, then the authenticator code.
    page.goto(f"{url}/accounts/login/")
    axe_check(page, "login page")
    page.locator("input[name=login]").fill("admin@northwind.test")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Enter your authenticator code")).to_be_visible()
    axe_check(page, "two-factor authentication page")
    page.locator("input[name=code]").fill(totp_code(TOTP_SECRET))
    page.get_by_role("button", name="Log in").click()
    expect_firm_dashboard(page, url, "Northwind")

    # Team: invite a staff member.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    expect(page).to_have_url(f"{url}/team/")
    axe_check(page, "team page")
    page.get_by_label("Email address").fill(STAFF_EMAIL)
    page.get_by_label("Role", exact=True).select_option(Role.STAFF.value)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(f"Invitation sent to {STAFF_EMAIL}.")).to_be_visible()
    expect(page.get_by_role("cell", name=STAFF_EMAIL)).to_be_visible()

    # The Celery task (eager under tests) emailed the link.
    wait_for_outbox(1)
    message = mail.outbox[-1]
    assert message.to == [STAFF_EMAIL]
    accept_path = invitation_path(message)

    # The admin logs out; the invitee opens the link in the same browser.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))

    page.goto(f"{url}{accept_path}")
    expect(page.get_by_role("heading", level=1, name="Join Northwind")).to_be_visible()
    axe_check(page, "accept invitation page")
    page.get_by_label("Your full name").fill("Sam Staff")
    page.get_by_label("Choose a password").fill(STAFF_PASSWORD)
    page.get_by_label("Repeat the password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Create my account").click()

    # The firm requires a second factor: enrolment comes first, without asking again for the
    # password just chosen (portal.auth.AccountAdapter waives reauthentication for a first
    # authenticator).
    expect(page).to_have_url(f"{url}/accounts/2fa/totp/activate/")
    expect(page.get_by_role("heading", name="Activate Authenticator App")).to_be_visible()
    axe_check(page, "authenticator activation page")
    secret = page.locator("#authenticator_secret").input_value()
    assert secret
    page.locator("input[name=code]").fill(totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/2fa/totp/activate/"))

    page.goto(f"{url}/dashboard/")
    expect_firm_dashboard(page, url, "Northwind")
    expect(page.locator(".who-name")).to_have_text("Sam Staff")
    axe_check(page, "staff dashboard")

    membership = Membership.objects.select_related("firm").get(user__email=STAFF_EMAIL)
    assert (membership.firm.name, membership.role, membership.is_active) == (
        "Northwind",
        Role.STAFF,
        True,
    )
    assert Authenticator.objects.filter(user=membership.user, type=Authenticator.Type.TOTP).exists()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def session_cookie_for(user, live_server_url: str) -> dict:
    """A logged-in session for `user`, as a browser cookie (the login itself is tested above)."""
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server_url,
    }


def test_dashboard_fits_a_phone_without_horizontal_scroll(live_server, new_context, axe_check):
    admin = northwind_admin()
    context = new_context(viewport=PHONE)
    context.add_cookies([session_cookie_for(admin, live_server.url)])
    page = context.new_page()

    page.goto(f"{live_server.url}/dashboard/")
    expect_firm_dashboard(page, live_server.url, "Northwind")

    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert inner_width == PHONE["width"]
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide in a {inner_width}px view"
    axe_check(page, "dashboard at phone width")
