"""Clocks start when things happened at CMS, not when staff click (issue 10, section 5)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from notifications.models import Notification
from portal.models import AuditEvent
from workflows import services
from workflows.errors import TransitionError

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 9:00 in Chicago
TODAY = date(2026, 11, 25)


@pytest.fixture
def chicago(northwind):
    northwind.time_zone = "America/Chicago"
    northwind.save(update_fields=["time_zone"])
    return northwind


@pytest.fixture
def individual(rivera):
    return rivera.profiles.get(kind="individual")


def test_a_backdated_request_expires_30_days_after_the_day_it_was_sent_in_the_firms_zone(
    chicago, individual, northwind_staff
):
    with time_machine.travel(NOW, tick=False):
        grant = services.grant_create(
            profile=individual,
            method="connection_request",
            actor=northwind_staff,
            sent_on=TODAY - timedelta(days=10),  # Nov 15
        )
    local_deadline = grant.deadline.astimezone(chicago.zone)
    assert local_deadline.date() == date(2026, 12, 15)
    assert grant.sent_at.astimezone(chicago.zone).date() == date(2026, 11, 15)
    # Reminders already in the past (days 3 and 7) are not sent late; day 14 onward are.
    steps = set(Notification.objects.filter(kind="grant.reminder").values_list("step", flat=True))
    assert steps == {"day-14", "day-21", "day-25", "day-28"}
    event = AuditEvent.objects.get(verb="grant.sent")
    assert event.data["cms_date"] == "2026-11-15"
    assert event.created_at == NOW  # when it was recorded


def test_a_round_counts_its_20_days_from_the_submission_in_pecos(
    chicago, individual, northwind_staff
):
    enrollment = services.enrollment_create(
        profile=individual, kind="initial", actor=northwind_staff
    )
    with time_machine.travel(NOW, tick=False):
        signature_round = services.round_open(
            enrollment=enrollment, actor=northwind_staff, submitted_on=TODAY - timedelta(days=3)
        )
    assert signature_round.deadline.astimezone(chicago.zone).date() == date(2026, 12, 12)


@pytest.mark.parametrize(
    ("days_back", "message"),
    [(-1, "in the future"), (61, "more than 60 days ago")],
)
def test_future_dates_and_dates_more_than_60_days_back_are_refused(
    chicago, individual, northwind_staff, days_back, message
):
    with time_machine.travel(NOW, tick=False), pytest.raises(TransitionError, match=message):
        services.grant_create(
            profile=individual,
            method="connection_request",
            actor=northwind_staff,
            sent_on=TODAY - timedelta(days=days_back),
        )
    assert not individual.access_grants.exists()


def test_staff_give_the_cms_date_on_the_client_page(as_user, northwind_staff, individual):
    response = as_user(northwind_staff).post(
        reverse("grant_create", args=[individual.public_id]),
        {"method": "connection_request", "pecos": "on", "nppes": "on", "sent_on": "2999-01-01"},
        follow=True,
    )
    assert "in the future" in response.content.decode()
    assert not individual.access_grants.exists()
