"""In a real browser, the CMS rules of issue 10:

(b) an uploaded wet signature that passed its 20 days shows as past its deadline on the
    caseload and in the stuck report;
(c) a development request the provider must answer reaches their phone with its due date,
    and "I've done this" goes back to staff;
and a denial recorded from the client page shows its reconsideration window.
"""

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
    profile_section,
)
from tests.portal.factories import PASSWORD
from workflows import services
from workflows.models import DevelopmentRequest, Enrollment, SignatureRound

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def submitted_enrollment(rivera, staff):
    enrollment = services.enrollment_create(
        profile=individual(rivera), kind=Enrollment.Kind.INITIAL, actor=staff
    )
    return services.enrollment_change_state(enrollment=enrollment, to="submitted", actor=staff)


def test_upload_round_past_its_20_days_is_past_deadline_on_the_caseload_and_stuck_report(
    live_server, page, rivera, northwind_admin, axe_check
):
    enrollment = services.enrollment_create(
        profile=individual(rivera), kind=Enrollment.Kind.INITIAL, actor=northwind_admin
    )
    today = timezone.localdate(timezone=rivera.firm.zone)
    services.round_open(
        enrollment=enrollment,
        actor=northwind_admin,
        method=SignatureRound.Method.UPLOAD,
        submitted_on=today - timedelta(days=21),
    )
    url = live_server.url
    log_in_staff(page, url, northwind_admin.email)
    caseload = page.get_by_role("table", name="Clients, most urgent first")
    row = caseload.get_by_role("row").filter(has_text="Ana Rivera, LCSW")
    expect(row.get_by_text("1 day overdue")).to_be_visible()
    page.goto(f"{url}/work/reports/stuck/")
    stuck = page.get_by_role("table").filter(has_text="Ana Rivera")
    expect(stuck.get_by_text("Past its signature deadline")).to_be_visible()
    axe_check(page, "stuck report, upload round past its deadline")


def test_provider_answers_a_development_request_on_a_phone(
    live_server, new_context, rivera, northwind_staff, axe_check
):
    enrollment = submitted_enrollment(rivera, northwind_staff)
    url = live_server.url

    staff_page = new_context().new_page()
    log_in_staff(staff_page, url, northwind_staff.email)
    staff_page.goto(f"{url}/clients/{rivera.public_id}/")
    work = profile_section(staff_page, "Individual profile").locator(".enrollment")
    work.get_by_text("Work on this enrollment").click()
    work.get_by_label("Who must act").select_option("provider")
    work.get_by_label("What the contractor asks for").fill(
        "A signed copy of the lease for your practice location"
    )
    work.get_by_role("button", name="Record development request").click()
    expect(
        staff_page.get_by_text("Development request recorded. The provider has been told.")
    ).to_be_visible()
    request = DevelopmentRequest.objects.get(enrollment=enrollment)
    due = request.deadline.astimezone(rivera.firm.zone)
    expect(staff_page.get_by_text(f"due {due:%b} {due.day}, {due.year}")).to_be_visible()
    axe_check(staff_page, "client page, development request open")

    phone = new_context(viewport=PHONE).new_page()
    rivera.user.set_password(PASSWORD)
    rivera.user.save()
    log_in_with_password(phone, url, rivera.email)
    todo = phone.locator("article.todo").filter(has_text="Send what the Medicare contractor")
    expect(todo).to_be_visible()
    expect(todo.get_by_text("30 days left")).to_be_visible()
    expect(
        todo.get_by_text("A signed copy of the lease for your practice location")
    ).to_be_visible()
    expect(todo.get_by_text(f"{due:%A, %B} {due.day}").first).to_be_visible()
    axe_check(phone, "provider to-dos, development request")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "provider-development-request.png"), full_page=True)
    todo.get_by_role("button", name="I've done this").click()
    expect(phone.get_by_text("Thank you. We'll check it")).to_be_visible()
    request.refresh_from_db()
    assert request.state == DevelopmentRequest.State.PROVIDER_SAYS_DONE


def test_staff_record_a_denial_and_see_its_reconsideration_window(
    live_server, page, rivera, northwind_staff, axe_check
):
    enrollment = submitted_enrollment(rivera, northwind_staff)
    url = live_server.url
    log_in_staff(page, url, northwind_staff.email)
    page.goto(f"{url}/clients/{rivera.public_id}/")
    work = profile_section(page, "Individual profile").locator(".enrollment")
    work.get_by_text("Work on this enrollment").click()
    work.get_by_label("Outcome").select_option("denied")
    work.get_by_label("Reason (from the letter)").fill("Practice location could not be verified")
    work.get_by_role("button", name="Record outcome").click()
    expect(page.get_by_text("Outcome recorded: denied.")).to_be_visible()
    enrollment.refresh_from_db()
    deadline = enrollment.reconsideration_deadline.astimezone(rivera.firm.zone)
    section = profile_section(page, "Individual profile")
    expect(section.get_by_text("Window open")).to_be_visible()
    expect(
        section.get_by_text(f"request by {deadline:%b} {deadline.day}, {deadline.year}")
    ).to_be_visible()
    axe_check(page, "client page, denial with reconsideration window")
    page.reload()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "client-denied-reconsideration.png"), full_page=True)
    section.get_by_role("button", name="Reconsideration filed").click()
    expect(page.get_by_text("Reconsideration recorded as filed")).to_be_visible()


def test_a_reassignment_is_signed_by_the_provider_and_the_groups_delegated_official(
    live_server, new_context, rivera, northwind_staff, delegate, axe_check
):
    """(a) Staff record the group's Delegated Official and open the round; the provider and
    the official each sign from their own login; staff verify each; the round completes."""
    from tests.clients.factories import add_organization

    group = add_organization(
        rivera,
        actor=northwind_staff,
        name="Lakeside Medical Group",
        provider_is_authorized_official=False,
    )
    enrollment = services.enrollment_create(
        profile=individual(rivera), kind=Enrollment.Kind.REASSIGNMENT, actor=northwind_staff
    )
    url = live_server.url

    staff_page = new_context().new_page()
    log_in_staff(staff_page, url, northwind_staff.email)
    staff_page.goto(f"{url}/clients/{rivera.public_id}/")
    lakeside = profile_section(staff_page, "Lakeside Medical Group")
    lakeside.get_by_text("Record an official").click()
    lakeside.get_by_label("Signs as").select_option("delegated_official")
    lakeside.get_by_label("Person", exact=True).select_option(label="Olivia Office (delegate)")
    lakeside.get_by_label("Email entered in PECOS").fill("olivia.pecos@lakeside.test")
    lakeside.get_by_role("button", name="Record official").click()
    expect(staff_page.get_by_text("Recorded who signs for Lakeside Medical Group.")).to_be_visible()
    official = group.officials.get()

    work = profile_section(staff_page, "Individual profile").locator(".enrollment")
    work.get_by_text("Work on this enrollment").click()
    work.get_by_label("Official who signs").select_option(str(official.public_id))
    work.get_by_role("button", name="Ask for the signature").click()
    expect(
        staff_page.get_by_text("Signature round opened; the provider has been told.")
    ).to_be_visible()
    section = profile_section(staff_page, "Individual profile")
    expect(section.get_by_text("Olivia Office (Delegated Official)")).to_be_visible()
    axe_check(staff_page, "client page, reassignment round with two signers")

    for user, title in [
        (rivera.user, "Sign round 1 of your application"),
        (delegate, "Sign round 1 as Delegated Official of Lakeside Medical Group"),
    ]:
        user.set_password(PASSWORD)
        user.save()
        phone = new_context(viewport=PHONE).new_page()
        log_in_with_password(phone, url, user.email)
        todo = phone.locator("article.todo").filter(has_text=title)
        expect(todo.get_by_role("button", name="I've done this")).to_be_visible()
        if user == delegate:
            expect(todo.get_by_text("CMS will email olivia.pecos@lakeside.test")).to_be_visible()
            axe_check(phone, "delegated official's to-do")
            phone.screenshot(
                path=str(SCREENSHOTS / "official-signs-reassignment.png"), full_page=True
            )
        todo.get_by_role("button", name="I've done this").click()
        expect(phone.get_by_text("Thank you. We'll check it")).to_be_visible()

    staff_page.reload()
    section = profile_section(staff_page, "Individual profile")
    section.get_by_role("button", name="Verified: Ana Rivera, LCSW signed").click()
    expect(staff_page.get_by_text("Ana Rivera, LCSW's signature confirmed.")).to_be_visible()
    section = profile_section(staff_page, "Individual profile")
    section.get_by_role("button", name="Verified: Olivia Office signed").click()
    expect(staff_page.get_by_text("Olivia Office's signature confirmed.")).to_be_visible()
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.SUBMITTED


def test_from_the_email_to_done_in_three_taps_on_a_phone(
    live_server, new_context, rivera, northwind_staff, axe_check, settings
):
    """Issue 13, measured: from opening the email's link to "I've done this" on a
    390x844 phone, for a provider without a second factor: taps and typed fields."""
    import re

    from django.core import mail

    from notifications import tasks
    from notifications.models import Notification

    settings.SITE_URL = live_server.url
    grant = services.grant_create(
        profile=individual(rivera), method="connection_request", actor=northwind_staff
    )
    Notification.objects.filter(channel="email").update(due_at=timezone.now())
    tasks.deliver_due()
    email = next(m for m in mail.outbox if m.to == [rivera.email])
    link = re.search(r"(http://\S+/go/\S+/)", email.body).group(1)

    phone = new_context(viewport=PHONE).new_page()
    taps, typed = 0, 0
    phone.goto(link)  # tap 1: the link in the email
    taps += 1
    phone.get_by_role("button", name="Open my to-do list").click()  # tap 2
    taps += 1
    expect(phone.get_by_role("heading", name="Your to-dos")).to_be_visible()
    button = phone.locator("article.todo").first.get_by_role("button", name="I've done this")
    box = button.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= PHONE["height"], box  # on the first screen
    axe_check(phone, "provider to-dos after the sign-in link")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "one-tap-to-do.png"))
    button.click()  # tap 3
    taps += 1
    expect(phone.get_by_text("Thank you. We'll check it")).to_be_visible()
    grant.refresh_from_db()
    assert grant.state == "provider_says_done"
    assert (taps, typed) == (3, 0)
    print(f"\nfrom email to done: {taps} taps, {typed} typed fields (390x844)")
