"""The firm settings page in Chromium: a reminder schedule reads as a sentence while it is
typed, and a schedule past its clock is refused with the reason on save."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_workflows import log_in_staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reminder_schedule_reads_as_a_sentence_while_it_is_typed(
    live_server, page, northwind, northwind_admin, axe_check
):
    log_in_staff(page, live_server.url, northwind_admin.email)
    page.goto(f"{live_server.url}/settings/")
    preview = page.locator("#id_grant_reminder_days_preview")
    expect(preview).to_have_text(
        "On day 3, 7, 14, 21, 25 and 28 of the 30-day connection request clock."
    )

    page.locator("#id_grant_reminder_days").fill("9, 3, 40")
    expect(preview).to_have_text(
        "On day 3, 9 and 40 of the 30-day connection request clock. Day 40 is past the deadline."
    )
    # The clock it falls in is read live too.
    page.locator("#id_grant_expiry_days").fill("45")
    expect(preview).to_contain_text("of the 45-day connection request clock.")
    page.locator("#id_grant_expiry_days").fill("30")
    page.locator("#id_document_reminder_days").fill("1")
    expect(page.locator("#id_document_reminder_days_preview")).to_have_text("1 day before.")
    page.locator("#id_document_reminder_days").fill("7, 3, 1")

    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#id_grant_reminder_days_error")).to_have_text(
        "Day 40 falls on or after the 30-day connection request deadline: every day must be "
        "before day 30."
    )
    axe_check(page, "settings with an error")
    northwind.refresh_from_db()
    assert northwind.grant_reminder_days == [3, 7, 14, 21, 25, 28]
