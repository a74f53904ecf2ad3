"""Development requests from the contractor (issue 10, section 4): a record of their own with
the letter's date, what is asked, the response due date, who must act and when it was
answered; the provider's to-do, reminders and staff alerts; the clock on the caseload and in
the stuck report."""

from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse

from clients.models import Client, CMSRole, Profile
from notifications.models import Notification
from reports.reports import ReportFilters, stuck_report
from tests.workflows.conftest import LETTERS_NOW
from workflows import services
from workflows.casefile import client_file
from workflows.errors import NotAllowed, TransitionError
from workflows.models import DevelopmentRequest, Enrollment
from workflows.rules import Party
from workflows.todos import party_for, todos_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("letters_now")]
NOW = LETTERS_NOW


def open_request(enrollment, staff, **kwargs):
    values = {"asked": "Current state license", "holder": "provider"} | kwargs
    return services.development_open(enrollment=enrollment, actor=staff, **values)


def provider_party(rivera):
    return Party(name=rivera.display_name, is_provider=True)


def test_the_response_is_due_30_days_after_the_letter_at_the_end_of_that_day(
    submitted, northwind_staff
):
    request = open_request(submitted, northwind_staff, letter_on=date(2026, 10, 2))
    assert request.letter_on == date(2026, 10, 2)
    assert request.due_on == date(2026, 11, 1)
    local = request.deadline.astimezone(submitted.firm.zone)
    assert (local.date(), local.hour, local.minute) == (date(2026, 11, 1), 23, 59)
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.IN_DEVELOPMENT
    assert submitted.holder == "provider"


def test_the_letters_own_due_date_and_the_firms_default_are_used(
    chicago_firm, submitted, northwind_staff
):
    own = open_request(submitted, northwind_staff, due_on=date(2026, 10, 28))
    assert own.due_on == date(2026, 10, 28)
    chicago_firm.development_response_days = 45
    chicago_firm.save()
    submitted.refresh_from_db()
    second = open_request(submitted, northwind_staff, letter_on=date(2026, 10, 14))
    assert second.due_on == date(2026, 11, 28)
    assert [own.number, second.number] == [1, 2]


@pytest.mark.parametrize(
    ("letter_on", "due_on", "message"),
    [
        (date(2026, 10, 15), None, "in the future"),
        (date(2026, 8, 14), None, "more than 60 days ago"),
        (date(2026, 10, 1), date(2026, 9, 30), "before the letter"),
        (date(2026, 9, 1), date(2026, 10, 13), "has passed"),
    ],
)
def test_impossible_dates_are_refused_and_nothing_is_written(
    submitted, northwind_staff, letter_on, due_on, message
):
    with pytest.raises(TransitionError, match=message):
        open_request(submitted, northwind_staff, letter_on=letter_on, due_on=due_on)
    assert not DevelopmentRequest.objects.exists()
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.SUBMITTED


def test_a_development_request_follows_a_submission(rivera, northwind_staff, chicago_firm):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    preparing = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    with pytest.raises(TransitionError, match="follows a submission"):
        open_request(preparing, northwind_staff)
    with pytest.raises(TransitionError, match="what the contractor asks"):
        open_request(preparing, northwind_staff, asked="  ")


def test_answering_the_last_open_request_returns_the_application_to_the_contractor(
    submitted, northwind_staff
):
    first = open_request(submitted, northwind_staff)
    second = open_request(
        submitted,
        northwind_staff,
        holder="firm",
        asked="Corrected address",
        letter_on=date(2026, 10, 10),
    )
    services.development_record_answered(request=first, actor=northwind_staff)
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.IN_DEVELOPMENT  # the second is still open
    services.development_record_answered(
        request=second, actor=northwind_staff, responded_on=date(2026, 10, 13)
    )
    second.refresh_from_db()
    assert second.responded_on == date(2026, 10, 13)
    submitted.refresh_from_db()
    assert (submitted.state, submitted.holder) == (Enrollment.State.SUBMITTED, "cms")
    with pytest.raises(TransitionError, match="answered"):
        services.development_record_answered(request=second, actor=northwind_staff)


def test_the_provider_gets_a_to_do_only_when_they_must_act(rivera, submitted, northwind_staff):
    open_request(submitted, northwind_staff, holder="firm", asked="Corrected address")
    mine = open_request(submitted, northwind_staff, asked="Your malpractice certificate")
    case = client_file(Client.objects.get(pk=rivera.pk))
    party = party_for(rivera.user, case.client)
    todos = [t for t in todos_for(case, party) if t.development]
    assert [t.development.pk for t in todos] == [mine.pk]
    todo = todos[0]
    assert todo.can_act
    assert todo.deadline == mine.deadline
    assert todo.days_left == 30
    assert any("Your malpractice certificate" in step for step in todo.steps)
    assert todo.done_kind == "development"


def test_a_staff_end_user_delegate_may_not_answer(rivera, submitted, northwind_staff):
    request = open_request(submitted, northwind_staff)
    profile = submitted.profile
    seu = Party(name="Temp", is_provider=False, roles={profile.pk: CMSRole.STAFF_END_USER})
    with pytest.raises(NotAllowed, match="Staff End User"):
        services.development_claim_done(request=request, party=seu, actor=rivera.user)
    manager = Party(name="Olivia", is_provider=False, roles={profile.pk: CMSRole.ACCESS_MANAGER})
    services.development_claim_done(request=request, party=manager, actor=rivera.user)


def test_a_request_the_firm_answers_has_no_provider_claim(rivera, submitted, northwind_staff):
    request = open_request(submitted, northwind_staff, holder="firm")
    with pytest.raises(TransitionError, match="nothing is needed from you"):
        services.development_claim_done(
            request=request, party=provider_party(rivera), actor=rivera.user
        )


def reminders(request, kinds, state=Notification.State.SCHEDULED):
    return Notification.objects.filter(
        subject_id=str(request.public_id), kind__in=kinds, state=state, channel="email"
    )


def test_reminders_before_the_due_date_at_the_firms_hour_and_alerts_to_staff(
    chicago_firm, submitted, northwind_staff
):
    request = open_request(submitted, northwind_staff, letter_on=date(2026, 10, 14))
    due = request.deadline.astimezone(chicago_firm.zone).date()
    provider_days = sorted(
        (due - row.due_at.astimezone(chicago_firm.zone).date()).days
        for row in reminders(request, ["development.reminder"]).filter(
            to_email="rivera@clinic.test"
        )
    )
    assert provider_days == [1, 3, 7, 14]
    assert {
        row.due_at.astimezone(chicago_firm.zone).hour
        for row in reminders(request, ["development.reminder"])
    } == {9}
    staff_days = sorted(
        (due - row.due_at.astimezone(chicago_firm.zone).date()).days
        for row in reminders(request, ["development.staff_alert", "development.last_day"])
    )
    assert staff_days == [0, 2, 7]
    # The delegate (Access Manager) is told too: office work is theirs to help with.
    assert (
        reminders(request, ["development.requested"]).filter(to_email="office@rivera.test").exists()
    )


def test_the_provider_saying_done_stops_their_reminders_not_the_staff_alerts(
    rivera, submitted, northwind_staff
):
    request = open_request(submitted, northwind_staff)
    services.development_claim_done(
        request=request, party=provider_party(rivera), actor=rivera.user
    )
    assert not reminders(request, ["development.reminder"]).exists()
    assert reminders(request, ["development.staff_alert"]).exists()
    assert Notification.objects.filter(kind="development.verify").exists()
    services.development_not_yet_done(request=request, actor=northwind_staff, reason="Expired")
    assert reminders(request, ["development.reminder"]).exists()
    services.development_record_answered(request=request, actor=northwind_staff)
    assert not reminders(request, ["development.reminder", "development.staff_alert"]).exists()


def test_the_due_date_is_the_clients_next_deadline_until_answered(
    rivera, submitted, northwind_staff
):
    request = open_request(submitted, northwind_staff, due_on=date(2026, 10, 20))
    rivera.refresh_from_db()
    assert rivera.next_deadline == request.deadline
    services.development_record_answered(request=request, actor=northwind_staff)
    rivera.refresh_from_db()
    assert rivera.next_deadline > NOW + timedelta(days=365)


def stuck(admin, **filters):
    report = stuck_report(membership=admin.memberships.get(), filters=ReportFilters(**filters))
    rows, _ = report.rows(limit=100)
    return [(row["item_stage"], row["item_reason"], row["item_holder"]) for row in rows]


def test_the_stuck_report_ranks_a_response_due_by_its_date(
    submitted, northwind_staff, northwind_admin
):
    later = open_request(submitted, northwind_staff, due_on=date(2026, 11, 20))
    assert ("development", "response_due", "provider") not in stuck(northwind_admin)
    soon = open_request(submitted, northwind_staff, due_on=date(2026, 10, 20))
    rows = stuck(northwind_admin, stage="development")
    assert rows == [("development", "response_due", "provider")]
    with time_machine.travel(soon.deadline + timedelta(minutes=1), tick=False):
        assert ("development", "past_response_date", "provider") in stuck(northwind_admin)
    assert later.is_open


def test_an_outcome_cancels_the_open_requests(submitted, northwind_staff):
    request = open_request(submitted, northwind_staff)
    services.enrollment_record_outcome(
        enrollment=submitted,
        outcome="rejected",
        reason="Development not answered",
        actor=northwind_staff,
    )
    request.refresh_from_db()
    assert request.state == DevelopmentRequest.State.CANCELLED
    assert not reminders(request, ["development.reminder"]).exists()


def test_staff_record_a_request_from_the_client_page_and_bad_input_loses_nothing(
    as_user, rivera, submitted, northwind_staff
):
    browser = as_user(northwind_staff)
    url = reverse("development_create", args=[submitted.public_id])
    response = browser.post(
        url, {"asked": "Proof of address", "holder": "provider", "letter_on": "junk"}, follow=True
    )
    assert response.status_code == 200
    assert b"Enter a valid date" in response.content
    assert not DevelopmentRequest.objects.exists()
    response = browser.post(
        url,
        {"asked": "Proof of address", "holder": "provider", "letter_on": "2026-10-09"},
        follow=True,
    )
    assert b"Development request recorded" in response.content
    page = browser.get(reverse("client_detail", args=[rivera.public_id])).content.decode()
    assert "Proof of address" in page
    assert "Nov 8, 2026" in page
    request = DevelopmentRequest.objects.get()
    response = browser.post(
        reverse("development_action", args=[request.public_id, "answered"]),
        {"on": "2026-10-20"},
        follow=True,
    )
    assert b"in the future" in response.content
    request.refresh_from_db()
    assert request.is_open


def test_the_provider_says_done_from_their_to_do(as_user, rivera, submitted, northwind_staff):
    request = open_request(submitted, northwind_staff, asked="Your DEA certificate")
    browser = as_user(rivera.user)
    page = browser.get(reverse("dashboard")).content.decode()
    assert "Your DEA certificate" in page
    assert reverse("todo_done", args=["development", request.public_id]) in page
    browser.post(reverse("todo_done", args=["development", request.public_id]))
    request.refresh_from_db()
    assert request.state == DevelopmentRequest.State.PROVIDER_SAYS_DONE
    response = browser.post(reverse("todo_done", args=["nonsense", request.public_id]))
    assert response.status_code == 404


def test_emails_read_dates_in_the_firms_zone_whoever_renders_them(
    chicago_firm, submitted, northwind_staff
):
    """A deadline at 23:59 in Chicago is 05:59 the next day in UTC: a worker (UTC active)
    rendering the message must still write the Chicago date."""
    from django.utils import timezone

    with timezone.override("UTC"):
        request = open_request(submitted, northwind_staff, due_on=date(2026, 10, 30))
    row = reminders(request, ["development.requested"]).first()
    assert "Deadline: Friday, October 30, 2026" in row.body_text
