"""In a real browser, the credentials file (issue 14): a provider renews a malpractice COI
from a phone, staff accept it with its new expiry date, and it leaves the stuck report."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.test_workflows import (
    SCREENSHOTS,
    individual,
    log_in_staff,
    log_in_with_password,
)
from tests.portal.factories import PASSWORD
from tests.workflows.documents import PHONE_JPEG, upload
from workflows import credentials
from workflows.models import Credential

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_provider_renews_a_coi_from_a_phone_and_staff_accept_it(
    live_server, new_context, rivera, northwind_staff, axe_check
):
    firm = rivera.firm
    today = timezone.now().astimezone(firm.zone).date()
    coi = credentials.credential_add(
        profile=individual(rivera),
        kind=credentials.kind_for(firm, "malpractice"),
        actor=northwind_staff,
        number="MPL-2231-77",
        issuer="Texas Medical Liability Trust",
        expires_on=today + timedelta(days=10),
        upload=upload(),
    )
    url = live_server.url

    # Staff see it on the stuck report: it expires within the month.
    staff_page = new_context().new_page()
    log_in_staff(staff_page, url, northwind_staff.email)
    staff_page.goto(f"{url}/work/reports/stuck/")
    stuck = staff_page.get_by_role("table").filter(has_text="Ana Rivera")
    expect(stuck.get_by_text("Expires soon")).to_be_visible()

    # The provider, on her phone: the renewal to-do, a photo of the new certificate.
    phone = new_context(viewport=PHONE).new_page()
    rivera.user.set_password(PASSWORD)
    rivera.user.save()
    log_in_with_password(phone, url, rivera.email)
    todo = phone.locator("article.todo").filter(has_text="Renew: upload your malpractice")
    expect(todo).to_be_visible()
    expect(todo.get_by_text("10 days left")).to_be_visible()
    axe_check(phone, "provider to-dos, credential renewal")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "provider-upload-document.png"), full_page=True)
    todo.get_by_label("Photo or PDF of the document").set_input_files(
        {"name": "IMG_0042.JPG", "mimeType": "image/jpeg", "buffer": PHONE_JPEG}
    )
    todo.get_by_role("button", name="Send it").click()
    expect(phone.get_by_text("Thank you: we have it")).to_be_visible()
    coi.refresh_from_db()
    assert coi.state == Credential.State.RECEIVED

    # Staff open it from the client page and accept it with the new expiry.
    staff_page.goto(f"{url}/clients/{rivera.public_id}/")
    section = staff_page.get_by_role("region", name="Credentials")
    expect(section.get_by_text("Received, awaiting review")).to_be_visible()
    axe_check(staff_page, "client page, credentials")
    section.get_by_role("link", name="Malpractice certificate of insurance").click()
    expect(staff_page.get_by_role("link", name="Version 2 (image/jpeg")).to_be_visible()
    new_expiry = today + timedelta(days=375)
    staff_page.get_by_label("Expires on (as printed on it)").fill(new_expiry.isoformat())
    axe_check(staff_page, "credential review")
    staff_page.screenshot(path=str(SCREENSHOTS / "credential-review.png"), full_page=True)
    staff_page.get_by_role("button", name="Accept with these dates").click()
    expect(staff_page.get_by_text("Accepted: it is on file")).to_be_visible()
    coi.refresh_from_db()
    assert coi.state == Credential.State.ACCEPTED
    assert coi.expires_on == new_expiry

    # ...and it is no longer stuck.
    staff_page.goto(f"{url}/work/reports/stuck/")
    expect(staff_page.locator("tbody tr").filter(has_text="Expires soon")).to_have_count(0)
    expect(staff_page.locator("tbody tr").filter(has_text="Ana Rivera")).to_have_count(0)
