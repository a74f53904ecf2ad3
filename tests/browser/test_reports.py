"""In a real browser: an admin reads the stuck report, filters it to one staff member, opens a
stuck client and downloads the filtered report as CSV.

The caseload is built through the services, each step at its own moment in the past
(time_machine), so every item is stuck for the reason the report should give.
"""

import csv
import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from reports.reports import PAGE_SIZE
from reports.views import CSV_COLUMNS
from tests.browser.test_workflows import log_in_staff
from tests.clients.factories import make_client
from workflows import services

SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "stuck-report.png"


def stuck_caseload(firm, *, staff, admin):
    """Four clients, one stuck item each: two assigned to `staff`, two to `admin`."""
    now = timezone.now()

    def at(days_ago: float):
        return time_machine.travel(now - timedelta(days=days_ago), tick=False)

    def new_client(last_name, assignee):
        return make_client(firm, actor=admin, assigned_staff=assignee, last_name=last_name)

    # staff: an add-staff request sent 20 days ago (waiting longer than usual).
    with at(20):
        adams = new_client("Adams", staff)
        services.grant_create(
            profile=adams.profiles.get(),
            method="add_staff",
            requested_role="access_manager",
            actor=staff,
        )
    # admin: a connection request sent 27 days ago (expires in 3 days).
    with at(27):
        baker = new_client("Baker", admin)
        services.grant_create(
            profile=baker.profiles.get(), method="connection_request", actor=admin
        )
    # staff: a paper signature mailed 40 days ago, not received.
    with at(42):
        carter = new_client("Carter", staff)
        enrollment = services.enrollment_create(
            profile=carter.profiles.get(), kind="initial", actor=staff
        )
    with at(41):
        paper = services.round_open(enrollment=enrollment, actor=staff, method="paper")
    with at(40):
        services.round_mark_mailed(signature_round=paper, actor=staff)
    # admin: a connection request sent 35 days ago, expired 4 days ago, not sent again.
    with at(35):
        dunn = new_client("Dunn", admin)
        services.grant_create(profile=dunn.profiles.get(), method="connection_request", actor=admin)
    with at(4):
        assert services.grants_expire_due() == 1
    return adams, baker, carter, dunn


def table_rows(page) -> list[tuple[str, str, str]]:
    """(client, stage, reason) for each row of the stuck items table, in order."""
    table = page.get_by_role("region", name="Stuck items, most urgent first").locator("tbody tr")
    return [
        (
            row.locator("td[data-label=Client] a").inner_text().strip(),
            row.locator("td[data-label=Stage]").inner_text().split("\n")[0].strip(),
            row.locator("td[data-label=Reason]").inner_text().strip(),
        )
        for row in table.all()
    ]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_reads_filters_and_exports_the_stuck_report(
    live_server, page, northwind, northwind_admin, northwind_staff, axe_check, tmp_path
):
    adams, *_ = stuck_caseload(northwind, staff=northwind_staff, admin=northwind_admin)
    url = live_server.url
    log_in_staff(page, url, northwind_admin.email)

    # The report, from the navigation.
    page.get_by_role("navigation").get_by_role("link", name="Stuck", exact=True).click()
    expect(page).to_have_url(f"{url}{reverse('stuck_report')}")
    expect(page.get_by_role("heading", level=1, name="What is stuck")).to_be_visible()
    headline = page.get_by_role("region", name="Headline counts")
    expect(headline.locator(".big-number")).to_have_text("4 stuck items")
    everyone = table_rows(page)
    assert sorted(everyone) == sorted(
        [
            ("Pat Adams, MD", "Access: waiting for the provider", "Waiting longer than usual"),
            ("Pat Baker, MD", "Access: waiting for the provider", "Request expires soon"),
            (
                "Pat Carter, MD",
                "Signature: statement in the mail to the contractor",
                "Past its signature deadline",
            ),
            ("Pat Dunn, MD", "Access: expired or rejected", "Expired or rejected, not sent again"),
        ]
    )
    assert len(everyone) < PAGE_SIZE  # one page: the CSV below must match it exactly
    axe_check(page, "stuck report")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Only the staff member's caseload.
    page.get_by_label("Staff member", exact=True).select_option(label=northwind_staff.display_name)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"[?&]staff={northwind_staff.public_id}(&|$)"))
    expect(page.get_by_label("Staff member", exact=True)).to_have_value(
        str(northwind_staff.public_id)
    )
    expect(headline.locator(".big-number")).to_have_text("2 stuck items")
    filtered = table_rows(page)
    assert {client for client, _, _ in filtered} == {"Pat Adams, MD", "Pat Carter, MD"}
    assert len(filtered) == 2
    items = page.get_by_role("region", name="Stuck items, most urgent first")
    expect(items.get_by_text(northwind_staff.display_name, exact=True)).to_have_count(2)
    expect(items.get_by_text(northwind_admin.display_name, exact=True)).to_have_count(0)
    filtered_url = page.url

    # A stuck client's page, and back.
    items.get_by_role("link", name="Pat Adams, MD").click()
    expect(page).to_have_url(f"{url}{reverse('client_detail', args=[adams.public_id])}")
    expect(page.get_by_role("heading", level=1, name="Pat Adams, MD")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(filtered_url)
    expect(headline.locator(".big-number")).to_have_text("2 stuck items")

    # The CSV: the filtered page's rows, exactly.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert re.fullmatch(r"stuck-northwind-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as file:
        header, *rows = list(csv.reader(file))
    assert header == [name for name, _ in CSV_COLUMNS]
    assert header[:4] == ["client", "profile", "stage", "reason"]
    assert [(row[0], row[2], row[3]) for row in rows] == filtered
    assert {row[header.index("assignee")] for row in rows} == {northwind_staff.display_name}
