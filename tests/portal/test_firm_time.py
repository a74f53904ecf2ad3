"""Every time a person sees is in their firm's time zone, named, across a DST change
(issue 13: the timeline showed 07:06 for 01:06 in Chicago)."""

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (datetime(2026, 7, 1, 6, 6, tzinfo=UTC), ("July 1, 2026", "1:06 AM CDT")),  # summer
        (datetime(2026, 11, 2, 7, 6, tzinfo=UTC), ("November 2, 2026", "1:06 AM CST")),
    ],
)
def test_the_timeline_shows_the_firms_time_with_its_zone(
    as_user, northwind, northwind_staff, rivera, moment, shown
):
    northwind.time_zone = "America/Chicago"
    northwind.save(update_fields=["time_zone"])
    with time_machine.travel(moment, tick=False):
        AuditEvent.objects.create(
            verb="client.updated",
            firm=northwind,
            client_uuid=rivera.public_id,
            actor=northwind_staff,
        )
    page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    text = page.content.decode()
    day, time_of_day = shown  # the day's heading, then the time with its zone
    times = re.findall(r"<time[^>]*>([^<]*)</time>", text)
    assert any(day in found for found in times), times
    assert time_of_day in times, times


def test_time_datetime_values_are_valid_without_microseconds(as_user, northwind_staff, rivera):
    page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    values = re.findall(r'<time datetime="([^"]+)"', page.content.decode())
    assert values
    for value in values:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d[+-]\d{4})?", value), value
