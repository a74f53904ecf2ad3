"""The main pages, as a firm owner and a provider see them, at desktop and phone sizes: no
sideways scrolling on a 390 px phone, no serious accessibility violation, and screenshots
into docs/screenshots/ (the HTML of each is checked by the Nu Html Checker at the end of the
browser suite, tests/browser/conftest.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_workflows import (
    SCREENSHOTS,
    individual,
    log_in_staff,
    log_in_with_password,
)
from tests.portal.factories import PASSWORD
from tests.workflows.documents import upload
from workflows import credentials, services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def busy_rivera(rivera, northwind_admin):
    """Rivera with work of every kind: access, a round, a development request, credentials."""
    profile = individual(rivera)
    today = timezone.now().astimezone(rivera.firm.zone).date()
    services.grant_create(profile=profile, method="connection_request", actor=northwind_admin)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_admin)
    services.round_open(enrollment=enrollment, actor=northwind_admin, method="upload")
    coi = credentials.credential_add(
        profile=profile,
        kind=credentials.kind_for(rivera.firm, "malpractice"),
        actor=northwind_admin,
        number="MPL-2231-77",
        issuer="Texas Medical Liability Trust",
        expires_on=today + timedelta(days=12),
        upload=upload(),
    )
    credentials.credential_request(
        profile=profile,
        kind=credentials.kind_for(rivera.firm, "state_license"),
        actor=northwind_admin,
        state_code="TX",
        note="Your Texas LCSW license, both sides",
    )
    return rivera, coi


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def visit_all(page, url, pages, size_name, axe_check):
    wide = []
    for name, path in pages:
        page.goto(f"{url}{path}")
        if page.viewport_size == PHONE and (extra := overflow(page)) > 0:
            wide.append(f"{name} ({path}): {extra}px too wide")
        axe_check(page, f"{name}, {size_name}")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size_name}.png"), full_page=True)
    return wide


@pytest.mark.parametrize(("size_name", "size"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_the_firms_pages_fit_and_read(
    live_server, new_context, busy_rivera, northwind_admin, axe_check, size_name, size
):
    rivera, coi = busy_rivera
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = new_context(viewport=size).new_page()
    log_in_staff(page, live_server.url, northwind_admin.email)
    pages = [
        ("caseload", "/dashboard/"),
        ("client-page", f"/clients/{rivera.public_id}/"),
        ("credential", f"/work/credentials/{coi.public_id}/"),
        ("status-report", f"/work/clients/{rivera.public_id}/status/"),
        ("stuck-report", "/work/reports/stuck/"),
        ("team", "/team/"),
        ("settings", "/settings/"),
        ("credential-kinds", "/work/credential-kinds/"),
        ("revalidation-import", "/work/revalidations/import/"),
        ("notifications", "/notifications/"),
        ("security", "/accounts/2fa/"),
    ]
    wide = visit_all(page, live_server.url, pages, size_name, axe_check)
    assert not wide, "\n".join(wide)


@pytest.mark.parametrize(("size_name", "size"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_the_providers_pages_fit_and_read(
    live_server, new_context, busy_rivera, axe_check, size_name, size
):
    rivera, _coi = busy_rivera
    rivera.user.set_password(PASSWORD)
    rivera.user.save()
    page = new_context(viewport=size).new_page()
    log_in_with_password(page, live_server.url, rivera.email)
    pages = [
        ("provider-todos", "/dashboard/"),
        ("provider-notifications", "/notifications/"),
        ("provider-security", "/accounts/2fa/"),
    ]
    wide = visit_all(page, live_server.url, pages, size_name, axe_check)
    assert not wide, "\n".join(wide)
