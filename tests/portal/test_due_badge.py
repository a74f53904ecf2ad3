"""Overdue and due-soon at a glance, in words (issue 13)."""

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from portal.templatetags.dates import due_badge

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("deadline", "text", "tone"),
    [
        (datetime(2026, 11, 22, 18, 0, tzinfo=UTC), "3 days overdue", "danger"),
        (datetime(2026, 11, 24, 18, 0, tzinfo=UTC), "1 day overdue", "danger"),
        (datetime(2026, 11, 25, 18, 0, tzinfo=UTC), "due today", "danger"),
        (datetime(2026, 11, 26, 18, 0, tzinfo=UTC), "due tomorrow", "warn"),
        (datetime(2026, 11, 30, 18, 0, tzinfo=UTC), "due in 5 days", "warn"),
    ],
)
def test_the_badge_says_it_in_words(deadline, text, tone):
    with timezone.override("America/Chicago"):
        badge = due_badge(deadline, today=TODAY)
    assert f"badge-{tone}" in badge
    assert f">{text}<" in badge


def test_a_far_deadline_has_no_badge():
    assert due_badge(datetime(2026, 12, 20, tzinfo=UTC), today=TODAY) == ""


def test_the_day_is_the_firms_day():
    # 03:00 UTC on the 26th is still the evening of the 25th in Chicago: due today there.
    with timezone.override("America/Chicago"):
        assert "due today" in due_badge(datetime(2026, 11, 26, 3, 0, tzinfo=UTC), today=TODAY)


@pytest.mark.django_db
def test_the_caseload_flags_an_overdue_row(as_user, northwind, northwind_staff, rivera):
    from datetime import timedelta

    import time_machine
    from django.urls import reverse

    from workflows import services

    profile = rivera.profiles.get(kind="individual")
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    with time_machine.travel(timezone.now() - timedelta(days=23)):
        services.round_open(enrollment=enrollment, actor=northwind_staff)
    page = as_user(northwind_staff).get(reverse("dashboard")).content.decode()
    assert "3 days overdue" in page
