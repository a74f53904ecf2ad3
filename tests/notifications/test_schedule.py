"""When each message is due, to whom, and that it stops when its step is done."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from clients.models import Profile
from notifications.models import Notification
from workflows import services
from workflows.models import AccessGrant
from workflows.rules import Party

pytestmark = pytest.mark.django_db

EMAIL = Notification.Channel.EMAIL


def emails(**lookup):
    return Notification.objects.filter(channel=EMAIL, **lookup).order_by("due_at")


@pytest.fixture
def individual(rivera):
    return rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)


def send_request(profile, staff, when):
    with time_machine.travel(when, tick=False):
        return services.grant_create(profile=profile, method="connection_request", actor=staff)


# Tuesday, October 20, 2026, 10:00 in Chicago (CDT, UTC-5). Daylight saving ends Nov 1.
SENT = datetime(2026, 10, 20, 15, 0, tzinfo=UTC)


def test_connection_request_tells_the_provider_at_once(individual, northwind_staff, rivera):
    grant = send_request(individual, northwind_staff, SENT)
    first = emails(kind="grant.requested", to_email=rivera.email).get()
    assert first.due_at == SENT
    assert first.essential
    assert "CMS may not email you" in first.body_text
    assert "My Pending Connections" in first.body_text
    assert "expires on Thursday, November 19" in first.body_text
    assert first.link_path == "/dashboard/"
    assert first.message_id.startswith("<")
    assert first.message_id.endswith(">")
    assert grant.deadline == datetime(2026, 11, 19, 16, 0, tzinfo=UTC)


def test_reminders_on_days_3_7_14_21_25_28_at_nine_local_across_dst(
    individual, northwind_staff, rivera
):
    send_request(individual, northwind_staff, SENT)
    due = [n.due_at for n in emails(kind="grant.reminder", to_email=rivera.email)]
    expected = [
        datetime(2026, 10, 23, 14, 0, tzinfo=UTC),  # 09:00 CDT
        datetime(2026, 10, 27, 14, 0, tzinfo=UTC),
        datetime(2026, 11, 3, 15, 0, tzinfo=UTC),  # 09:00 CST, after the change
        datetime(2026, 11, 10, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 14, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 17, 15, 0, tzinfo=UTC),
    ]
    assert due == expected
    for moment in due:
        assert moment.astimezone(rivera.firm.zone).hour == 9


def test_delegates_who_may_approve_get_the_reminders_too(individual, northwind_staff):
    send_request(individual, northwind_staff, SENT)
    assert emails(kind="grant.reminder", to_email="office@rivera.test").count() == 6


def test_staff_alerted_on_days_21_and_28(individual, northwind_staff):
    send_request(individual, northwind_staff, SENT)
    alerts = emails(kind="grant.staff_alert")
    assert [n.to_email for n in alerts] == [northwind_staff.email] * 2
    assert [n.step for n in alerts] == ["day-21", "day-28"]


def test_the_same_schedule_twice_creates_nothing_new(individual, northwind_staff):
    from workflows import notify

    grant = send_request(individual, northwind_staff, SENT)
    before = Notification.objects.count()
    with time_machine.travel(SENT, tick=False):
        notify.grant_sent(grant)
    assert Notification.objects.count() == before


def test_reminders_stop_when_the_provider_says_done_and_resume_if_not(
    individual, northwind_staff, rivera, provider
):
    grant = send_request(individual, northwind_staff, SENT)
    with time_machine.travel(SENT + timedelta(days=4), tick=False):
        services.grant_claim_done(
            grant=grant, party=Party(name="Ana", is_provider=True), actor=provider
        )
        assert not emails(kind="grant.reminder", state="scheduled").exists()
        verify = emails(kind="grant.verify").get()
        assert verify.to_email == northwind_staff.email
        assert verify.due_at == timezone.now()
        services.grant_not_yet_done(grant=grant, actor=northwind_staff)
    resumed = emails(kind="grant.reminder", state="scheduled", to_email=rivera.email)
    assert [n.step for n in resumed] == ["day-7", "day-14", "day-21", "day-25", "day-28"]
    assert all(n.due_at > SENT + timedelta(days=4) for n in resumed)


def test_no_reminder_after_the_step_is_active(individual, northwind_staff):
    grant = send_request(individual, northwind_staff, SENT)
    with time_machine.travel(SENT + timedelta(days=1), tick=False):
        services.grant_mark_active(grant=grant, actor=northwind_staff)
    assert not emails(kind__in=["grant.reminder", "grant.staff_alert"], state="scheduled").exists()
    confirmation = emails(kind="grant.active").get()
    assert not confirmation.essential


def test_expiry_exactly_at_the_deadline_tells_provider_and_staff(
    individual, northwind_staff, rivera
):
    grant = send_request(individual, northwind_staff, SENT)
    with time_machine.travel(grant.deadline - timedelta(seconds=1), tick=False):
        assert services.grants_expire_due() == 0
    with time_machine.travel(grant.deadline, tick=False):
        assert services.grants_expire_due() == 1
        assert services.grants_expire_due() == 0
    grant.refresh_from_db()
    assert grant.state == AccessGrant.State.EXPIRED
    told = emails(kind="grant.expired").get()
    assert told.to_email == rivera.email
    assert "rejected it automatically" in told.body_text
    staff = emails(kind="grant.expired_staff").get()
    assert staff.to_email == northwind_staff.email
    assert "Send again" in staff.body_text
    assert staff.link_path == f"/clients/{rivera.public_id}/"


def test_signature_round_messages(rivera, northwind_staff):
    profile = rivera.profiles.get(kind="individual")
    with time_machine.travel(SENT, tick=False):
        enrollment = services.enrollment_create(
            profile=profile, kind="initial", actor=northwind_staff
        )
        first = services.round_open(enrollment=enrollment, actor=northwind_staff)
        services.round_confirm(signature_round=first, actor=northwind_staff)
        second = services.round_open_revision(
            enrollment=enrollment, actor=northwind_staff, reason="Address fixed"
        )
    # The provider's messages are about them as the round's signer.
    signer = second.signers.get()
    opened = emails(
        kind="round.opened", subject_id=str(signer.public_id), to_email=rivera.email
    ).get()
    assert "maybe before we call" in opened.body_text
    assert "Address fixed" in opened.body_text
    reminders = emails(
        kind="round.reminder", subject_id=str(signer.public_id), to_email=rivera.email
    )
    assert [n.step for n in reminders] == ["day-2", "day-5", "day-10", "day-15"]
    staff = emails(
        kind__in=["round.staff_alert", "round.overdue"], subject_id=str(second.public_id)
    )
    assert [n.step for n in staff] == ["day-7", "day-15", "deadline"]
    assert staff.last().due_at == second.deadline
    # The first round's reminders stopped when it was confirmed.
    assert not emails(
        subject_id=str(first.signers.get().public_id), kind="round.reminder", state="scheduled"
    ).exists()


@pytest.mark.parametrize("method", ["electronic", "upload", "paper"])
def test_every_signature_method_gets_reminders_and_alerts_inside_its_20_days(
    rivera, northwind_staff, method
):
    """Issue 10, section 1: the same 20-day clock and cadences whatever the method; a
    statement in the mail keeps its staff alerts until the contractor has it."""
    profile = rivera.profiles.get(kind="individual")
    with time_machine.travel(SENT, tick=False):
        enrollment = services.enrollment_create(
            profile=profile, kind="initial", actor=northwind_staff
        )
        signature_round = services.round_open(
            enrollment=enrollment, actor=northwind_staff, method=method
        )
    reminders = emails(kind="round.reminder", to_email="rivera@clinic.test")
    assert [n.step for n in reminders] == ["day-2", "day-5", "day-10", "day-15"]
    before = emails(kind__in=["round.reminder", "round.staff_alert"])
    assert before.exists()
    assert all(n.due_at < signature_round.deadline for n in before)
    assert emails(kind="round.overdue").get().due_at == signature_round.deadline
    assert not emails(kind="round.paper_followup").exists()
    if method == "paper":
        with time_machine.travel(SENT + timedelta(days=6), tick=False):
            services.round_mark_mailed(signature_round=signature_round, actor=northwind_staff)
        assert not emails(kind="round.reminder", state="scheduled").exists()
        assert emails(kind="round.staff_alert", state="scheduled").exists()
        assert emails(kind="round.overdue", state="scheduled").exists()
        with time_machine.travel(SENT + timedelta(days=12), tick=False):
            services.round_mark_received(signature_round=signature_round, actor=northwind_staff)
        chasing = ["round.reminder", "round.staff_alert", "round.overdue"]
        assert not emails(kind__in=chasing, state="scheduled").exists()


def test_cadences_are_firm_settings(northwind, individual, northwind_staff):
    northwind.grant_reminder_days = [5, 10]
    northwind.reminder_hour = 10
    northwind.save()
    send_request(individual, northwind_staff, SENT)
    due = [
        n.due_at.astimezone(northwind.zone)
        for n in emails(kind="grant.reminder", to_email="rivera@clinic.test")
    ]
    assert [(d.day, d.hour) for d in due] == [(25, 10), (30, 10)]


def test_in_app_copies_for_people_with_accounts(individual, northwind_staff, provider):
    send_request(individual, northwind_staff, SENT)
    in_app = Notification.objects.filter(
        channel="in_app", recipient=provider, kind="grant.requested"
    )
    assert in_app.count() == 1


def test_digest_once_per_working_day_at_eight_local(
    northwind, individual, northwind_staff, provider
):
    from reports.digest import send_due_digests

    grant = send_request(individual, northwind_staff, SENT)
    with time_machine.travel(SENT + timedelta(days=1), tick=False):
        services.grant_claim_done(
            grant=grant, party=Party(name="Ana", is_provider=True), actor=provider
        )
    tuesday_7am = datetime(2026, 10, 27, 12, 0, tzinfo=UTC)  # 07:00 CDT
    with time_machine.travel(tuesday_7am, tick=False):
        assert send_due_digests() == 0
    with time_machine.travel(tuesday_7am + timedelta(hours=1), tick=False):
        send_due_digests()
        send_due_digests()
    digests = emails(kind="digest")
    assert [n.to_email for n in digests] == [northwind_staff.email]
    assert "Verify: provider says access is granted" in digests.get().body_text
    assert "Ana Rivera" in digests.get().body_text
    saturday = datetime(2026, 10, 31, 14, 0, tzinfo=UTC)
    with time_machine.travel(saturday, tick=False):
        send_due_digests()
    assert emails(kind="digest").count() == 1


def test_no_digest_when_nothing_needs_them(northwind, northwind_staff):
    from reports.digest import send_due_digests

    with time_machine.travel(datetime(2026, 10, 27, 14, 0, tzinfo=UTC), tick=False):
        send_due_digests()
    assert not emails(kind="digest").exists()


def test_plain_text_parts_are_not_html_escaped(individual, northwind_staff, rivera):
    send_request(individual, northwind_staff, SENT)
    first = emails(kind="grant.requested", to_email=rivera.email).get()
    assert first.title == "Please approve your credentialer's access request"
    assert "&#x27;" not in first.body_text
