"""Enrollment outcomes and what follows them (issue 10, section 3): approved with its
effective date; rejected, fixed by a corrected resubmission; returned, needing a new
application; denied, with a reconsideration window that is a clock of its own; withdrawn.
Each is recorded with the letter's date and reason."""

from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse

from clients.models import Profile
from notifications.models import Notification
from reports.reports import ReportFilters, stuck_report
from tests.workflows.conftest import LETTERS_NOW
from workflows import services
from workflows.errors import TransitionError
from workflows.models import Enrollment, SignatureRound

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("letters_now")]
NOW = LETTERS_NOW


def record(enrollment, staff, outcome, **kwargs):
    values = {"reason": "Practice location not verified"} | kwargs
    return services.enrollment_record_outcome(
        enrollment=enrollment, outcome=outcome, actor=staff, **values
    )


def provider_message(kind):
    return Notification.objects.get(kind=kind, channel="email", to_email="rivera@clinic.test")


def test_an_approval_records_the_effective_date_cms_granted(submitted, northwind_staff):
    with pytest.raises(TransitionError, match="effective date"):
        record(submitted, northwind_staff, "approved")
    approved = record(
        submitted,
        northwind_staff,
        "approved",
        reason="",
        decided_on=date(2026, 10, 9),
        effective_date=date(2026, 9, 1),
    )
    assert (approved.state, approved.decided_on, approved.effective_date) == (
        Enrollment.State.APPROVED,
        date(2026, 10, 9),
        date(2026, 9, 1),
    )
    assert "September 1, 2026" in provider_message("enrollment.approved").body_text


@pytest.mark.parametrize("outcome", ["denied", "rejected", "returned", "withdrawn"])
def test_every_other_outcome_needs_the_letters_reason(submitted, northwind_staff, outcome):
    with pytest.raises(TransitionError, match="Say why"):
        record(submitted, northwind_staff, outcome, reason=" ")
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.SUBMITTED


def test_the_decision_date_is_never_in_the_future(submitted, northwind_staff):
    with pytest.raises(TransitionError, match="in the future"):
        record(submitted, northwind_staff, "returned", decided_on=date(2026, 10, 15))


def test_a_denial_opens_a_60_day_reconsideration_window_from_the_letter(
    rivera, submitted, northwind_staff
):
    denied = record(submitted, northwind_staff, "denied", decided_on=date(2026, 10, 1))
    local = denied.reconsideration_deadline.astimezone(denied.firm.zone)
    assert local.date() == date(2026, 11, 30)
    assert denied.reconsideration == Enrollment.Reconsideration.OPEN
    rivera.refresh_from_db()
    assert rivera.next_deadline == denied.reconsideration_deadline
    assert "November 30" in provider_message("enrollment.denied").body_text
    alerts = Notification.objects.filter(
        kind__in=["reconsideration.staff_alert", "reconsideration.last_day"], channel="email"
    )
    days_before = sorted(
        (local.date() - row.due_at.astimezone(denied.firm.zone).date()).days for row in alerts
    )
    assert days_before == [0, 2, 7, 14, 30]


def test_a_letters_own_reconsideration_deadline_wins(submitted, northwind_staff):
    denied = record(submitted, northwind_staff, "denied", reconsider_by=date(2026, 11, 2))
    assert denied.reconsideration_deadline.astimezone(denied.firm.zone).date() == date(2026, 11, 2)
    other = services.enrollment_create(
        profile=submitted.profile, kind="change", actor=northwind_staff
    )
    other = services.enrollment_change_state(
        enrollment=other, to="submitted", actor=northwind_staff
    )
    with pytest.raises(TransitionError, match="after the denial date"):
        record(other, northwind_staff, "denied", reconsider_by=date(2026, 10, 14))


def test_a_window_that_closed_before_the_denial_was_recorded_is_no_clock(
    chicago_firm, submitted, northwind_staff
):
    chicago_firm.reconsideration_days = 30
    chicago_firm.save()
    submitted.refresh_from_db()
    denied = record(submitted, northwind_staff, "denied", decided_on=date(2026, 9, 1))
    assert denied.reconsideration == ""
    assert denied.reconsideration_deadline is None


def stuck(admin):
    report = stuck_report(membership=admin.memberships.get(), filters=ReportFilters())
    rows, _ = report.rows(limit=100)
    return [(row["item_stage"], row["item_reason"]) for row in rows]


def test_an_open_window_is_urgent_in_the_stuck_report_and_filing_stops_its_clock(
    rivera, submitted, northwind_staff, northwind_admin
):
    record(submitted, northwind_staff, "denied", decided_on=date(2026, 10, 1))
    assert ("reconsideration", "reconsideration_window") in stuck(northwind_admin)
    with pytest.raises(TransitionError, match="in the future"):
        services.reconsideration_record_filed(
            enrollment=submitted, actor=northwind_staff, filed_on=date(2026, 10, 20)
        )
    filed = services.reconsideration_record_filed(enrollment=submitted, actor=northwind_staff)
    assert (filed.reconsideration, filed.holder) == ("filed", "cms")
    assert ("reconsideration", "reconsideration_window") not in stuck(northwind_admin)
    rivera.refresh_from_db()
    assert rivera.next_deadline > NOW + timedelta(days=365)
    assert not Notification.objects.filter(
        kind="reconsideration.staff_alert", state=Notification.State.SCHEDULED
    ).exists()


def test_a_reconsideration_filed_after_the_deadline_is_refused(submitted, northwind_staff):
    record(submitted, northwind_staff, "denied", reconsider_by=date(2026, 10, 20))
    with time_machine.travel(NOW + timedelta(days=10), tick=False):
        with pytest.raises(TransitionError, match="too late"):
            services.reconsideration_record_filed(enrollment=submitted, actor=northwind_staff)
        services.reconsideration_record_filed(
            enrollment=submitted, actor=northwind_staff, filed_on=date(2026, 10, 20)
        )


def test_a_reversal_approves_with_its_effective_date_and_an_upheld_denial_stays(
    rivera, submitted, northwind_staff
):
    record(submitted, northwind_staff, "denied")
    with pytest.raises(TransitionError, match="reconsideration"):
        record(submitted, northwind_staff, "approved", effective_date=date(2026, 9, 1))
    with pytest.raises(TransitionError, match="window open"):
        services.reconsideration_record_decision(
            enrollment=submitted, actor=northwind_staff, reversed_=True
        )
    services.reconsideration_record_filed(enrollment=submitted, actor=northwind_staff)
    approved = services.reconsideration_record_decision(
        enrollment=submitted,
        actor=northwind_staff,
        reversed_=True,
        effective_date=date(2026, 8, 15),
    )
    assert (approved.state, approved.reconsideration, approved.effective_date) == (
        Enrollment.State.APPROVED,
        Enrollment.Reconsideration.REVERSED,
        date(2026, 8, 15),
    )
    other = services.enrollment_create(
        profile=submitted.profile, kind="change", actor=northwind_staff
    )
    services.enrollment_change_state(enrollment=other, to="submitted", actor=northwind_staff)
    record(other, northwind_staff, "denied")
    with pytest.raises(TransitionError, match="Say why"):
        services.reconsideration_decline(enrollment=other, actor=northwind_staff, reason="")
    declined = services.reconsideration_decline(
        enrollment=other, actor=northwind_staff, reason="Provider is moving out of state"
    )
    assert declined.reconsideration == Enrollment.Reconsideration.DECLINED
    assert declined.state == Enrollment.State.DENIED


def test_a_rejection_is_fixed_by_a_corrected_resubmission_signed_again(submitted, northwind_staff):
    record(submitted, northwind_staff, "rejected", reason="Unsigned within 20 days")
    assert "sign the corrected application" in provider_message("enrollment.rejected").body_text
    signature_round = services.round_open_revision(
        enrollment=submitted,
        actor=northwind_staff,
        reason="Corrected practice address",
        submitted_on=date(2026, 10, 13),
    )
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.AWAITING_SIGNATURE
    assert (submitted.decided_on, submitted.outcome_reason) == (None, "")
    local = signature_round.deadline.astimezone(submitted.firm.zone)
    assert local.date() == date(2026, 11, 2)  # 20 days from the resubmission


def test_a_returned_application_needs_a_new_one(submitted, northwind_staff):
    record(submitted, northwind_staff, "returned", reason="Incomplete: no practice location")
    with pytest.raises(TransitionError, match="follows a submission"):
        services.round_open_revision(
            enrollment=submitted, actor=northwind_staff, reason="Corrected"
        )
    again = services.enrollment_create(
        profile=submitted.profile, kind="initial", actor=northwind_staff
    )
    assert again.is_open


def test_an_application_unsigned_in_20_days_is_recorded_rejected_and_its_round_closed(
    rivera, northwind_staff, chicago_firm
):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    signature_round = services.round_open(enrollment=enrollment, actor=northwind_staff)
    with time_machine.travel(signature_round.deadline + timedelta(days=1), tick=False):
        record(enrollment, northwind_staff, "rejected", reason="Not signed within 20 days")
    signature_round.refresh_from_db()
    assert signature_round.state == SignatureRound.State.CANCELLED


def test_change_state_refuses_what_has_its_own_action(submitted, northwind_staff):
    for to, message in [
        ("approved", "Record the outcome"),
        ("in_development", "Record the development request"),
    ]:
        with pytest.raises(TransitionError, match=message):
            services.enrollment_change_state(enrollment=submitted, to=to, actor=northwind_staff)


def test_staff_record_an_outcome_from_the_client_page(as_user, rivera, submitted, northwind_staff):
    browser = as_user(northwind_staff)
    url = reverse("enrollment_outcome", args=[submitted.public_id])
    response = browser.post(
        url, {"outcome": "approved", "effective_date": "not a date"}, follow=True
    )
    assert b"Enter a valid date" in response.content
    response = browser.post(url, {"outcome": "junk"}, follow=True)
    assert response.status_code == 200
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.SUBMITTED
    response = browser.post(
        url,
        {"outcome": "denied", "reason": "Not eligible", "decided_on": "2026-10-02"},
        follow=True,
    )
    assert b"Outcome recorded: denied" in response.content
    page = response.content.decode()
    assert "Window open" in page
    assert "Dec 1, 2026" in page
    response = browser.post(
        reverse("reconsideration_action", args=[submitted.public_id, "filed"]), {}, follow=True
    )
    assert b"filed" in response.content
    assert (
        browser.post(
            reverse("reconsideration_action", args=[submitted.public_id, "junk"])
        ).status_code
        == 404
    )


def test_the_status_report_shows_the_outcome_and_what_is_open(
    as_user, rivera, submitted, northwind_staff
):
    services.development_open(
        enrollment=submitted, actor=northwind_staff, asked="Proof of address", holder="firm"
    )
    other = services.enrollment_create(
        profile=submitted.profile, kind="change", actor=northwind_staff
    )
    services.enrollment_change_state(enrollment=other, to="submitted", actor=northwind_staff)
    record(other, northwind_staff, "approved", reason="", effective_date=date(2026, 9, 1))
    page = as_user(northwind_staff).get(reverse("client_status", args=[rivera.public_id]))
    text = page.content.decode()
    assert "effective Sep 1, 2026" in text
    assert "the contractor asked for more information (Proof of address), due Nov 13, 2026" in text
