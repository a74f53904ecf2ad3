"""The main pages, as a firm owner and a provider see them, at desktop and phone sizes: no
sideways scrolling on a 390 px phone, no serious accessibility violation, and screenshots
into docs/screenshots/ (the HTML of each is checked by the Nu Html Checker at the end of the
browser suite, tests/browser/conftest.py)."""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from portal.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET
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
    # A development request's "answered on" form is the widest row of the client page: it
    # overflowed a 390 px phone and nothing here showed it.
    pllc = rivera.profiles.get(kind="organizational")
    revalidation = services.enrollment_create(
        profile=pllc, kind="revalidation", actor=northwind_admin
    )
    services.enrollment_change_state(enrollment=revalidation, to="submitted", actor=northwind_admin)
    services.development_open(
        enrollment=revalidation,
        asked="A copy of the practice location's lease",
        holder="firm",
        actor=northwind_admin,
    )
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


# --- the demo, as a firm owner first sees it (issue 13) ---------------------------------


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", stdout=io.StringIO())


def log_in_demo(page, url: str, email: str) -> None:
    """A demo account: its published password, then the published TOTP secret's code."""
    log_in_staff(page, url, email, password=DEMO_PASSWORD, totp_secret=DEMO_TOTP_SECRET)


def column(table, label: str) -> list[str]:
    return table.locator(f'tbody td[data-label="{label}"]').all_inner_texts()


AGE_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400, "year": 365 * 86400}


def age_in_seconds(cell: str) -> int:
    """ "3 days ago" -> 259200 (the caseload's `age`); "less than a minute ago" -> 0."""
    found = re.search(r"(\d+) (minute|hour|day|month|year)s? ago", cell)
    return int(found.group(1)) * AGE_UNITS[found.group(2)] if found else 0


def surname(cell: str) -> str:
    """ "Ana Rivera, LCSW\\nNPI ..." -> "rivera"."""
    return cell.splitlines()[0].split(",")[0].split()[-1].lower()


def test_the_demo_dashboard_shows_real_work_and_its_inbox_a_few_new_items(
    live_server, new_context, demo, axe_check
):
    """The README's picture: Sam Staff's caseload in the demo, overdue rows first; and Sam's
    notifications by day and client, five at most new, all marked read in one press."""
    url = live_server.url
    page = new_context(viewport=DESKTOP).new_page()
    log_in_demo(page, url, "staff@northwind.example")
    page.reload()  # without the "signed in" message
    caseload = page.get_by_role("table", name="Clients, most urgent first")
    expect(caseload.locator("tbody tr")).to_have_count(22)
    expect(page.get_by_text("22 clients, most urgent first.")).to_be_visible()
    expect(caseload.locator("tbody tr").first.get_by_text("days overdue")).to_be_visible()
    expect(caseload.get_by_role("link", name="Ana Rivera, LCSW")).to_be_visible()
    axe_check(page, "demo caseload, desktop")
    assert overflow(page) == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"))  # the README's: the first screen

    nav = page.get_by_role("navigation", name="Main")
    unread = int(nav.locator(".count").inner_text().split()[0])
    assert 1 <= unread <= 5
    nav.get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", level=1, name="Notifications")).to_be_visible()
    expect(page.locator(".badge-new")).to_have_count(unread)
    expect(page.get_by_role("heading", level=2).first).to_have_text("Yesterday")
    expect(page.get_by_role("heading", level=3, name="Ana Rivera, LCSW").first).to_be_visible()
    axe_check(page, "demo notifications")
    page.screenshot(path=str(SCREENSHOTS / "notifications-by-day-and-client.png"))
    page.get_by_role("button", name="Mark all read").click()
    expect(page.get_by_text(f"{unread} notification")).to_be_visible()
    expect(page.locator(".badge-new")).to_have_count(0)
    expect(nav.locator(".count")).to_have_count(0)
    expect(page.get_by_role("button", name="Mark all read")).to_have_count(0)


def test_the_demo_caseload_sorts_pages_and_folds_its_filters_on_a_phone(
    live_server, new_context, demo, axe_check
):
    """The admin's 40 clients: sorted by each header both ways, two numbered pages that keep
    the sort, and on a 390 px phone the filters behind one button, nothing too wide."""
    url = live_server.url
    page = new_context(viewport=DESKTOP).new_page()
    log_in_demo(page, url, "admin@northwind.example")
    table = page.get_by_role("table")
    headers = table.locator("thead")

    # On a desktop the filters are open, with no button to open them.
    expect(page.get_by_label("Search")).to_be_visible()
    expect(page.locator("summary", has_text="Filter and sort")).to_be_hidden()

    headers.get_by_role("link", name="Client", exact=True).click()
    expect(page).to_have_url(f"{url}/dashboard/?sort=name")
    expect(headers.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    expect(headers.locator("th[aria-sort]")).to_contain_text("Client")
    names = [surname(cell) for cell in column(table, "Client")]
    assert len(names) == 25
    assert names == sorted(names)
    headers.get_by_role("link", name="Client", exact=True).click()
    expect(headers.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
    names = [surname(cell) for cell in column(table, "Client")]
    assert names == sorted(names, reverse=True)

    # Deadline, latest first: the clients with no deadline still come last (on page 2).
    headers.get_by_role("link", name="Next deadline").click()
    headers.get_by_role("link", name="Next deadline").click()
    expect(page).to_have_url(f"{url}/dashboard/?sort=-deadline")
    expect(page.get_by_text("40 clients, latest deadline first. Page 1 of 2.")).to_be_visible()
    first_page = column(table, "Next deadline")
    assert "None" not in first_page[0]
    pager = page.get_by_role("navigation", name="Pages")
    expect(pager.locator('[aria-current="page"]')).to_have_text("Page 1")
    pager.get_by_role("link", name="Page 2").click()
    expect(page).to_have_url(f"{url}/dashboard/?sort=-deadline&page=2")
    expect(headers.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
    deadlines = column(table, "Next deadline")
    assert len(deadlines) == 15
    nones = [index for index, cell in enumerate(deadlines) if cell.strip().endswith("None")]
    assert nones
    assert nones == list(range(nones[0], len(deadlines)))  # all at the end
    axe_check(page, "caseload page 2, desktop")

    # On a phone: one button opens the filters; a sort chosen there keeps across pages.
    page.set_viewport_size(PHONE)
    page.goto(f"{url}/dashboard/")
    summary = page.locator("summary", has_text="Filter and sort")
    expect(summary).to_be_visible()
    expect(page.get_by_label("Search")).to_be_hidden()
    assert overflow(page) == 0
    summary.click()
    expect(page.get_by_label("Search")).to_be_visible()
    page.get_by_label("Sort", exact=True).select_option(label="Least recent activity first")
    page.get_by_label("Overdue only").check()
    assert overflow(page) == 0
    axe_check(page, "caseload filters open, phone")
    page.screenshot(path=str(SCREENSHOTS / "caseload-filters-phone.png"))
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"sort=activity"))
    expect(page.get_by_label("Search")).to_be_hidden()  # folded again: the list comes first
    expect(page.locator("summary", has_text="Filter and sort")).to_contain_text("1 on")
    expect(page.get_by_text(re.compile(r"\d+ clients? match(es)? these filters"))).to_be_visible()
    ages = [age_in_seconds(cell) for cell in column(table, "Last activity")]
    assert ages
    assert ages == sorted(ages, reverse=True)  # the longest untouched first

    page.goto(f"{url}/dashboard/?sort=name")
    pager = page.get_by_role("navigation", name="Pages")
    expect(pager).to_be_visible()
    assert overflow(page) == 0
    pager.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(f"{url}/dashboard/?sort=name&page=2")
    expect(pager.locator('[aria-current="page"]')).to_have_text("Page 2")
    assert overflow(page) == 0
    axe_check(page, "caseload page 2, phone")
    page.screenshot(path=str(SCREENSHOTS / "caseload-page-2-phone.png"), full_page=True)
