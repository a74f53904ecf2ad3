from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from portal.templatetags.dates import age, iso

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ago", "said"),
    [
        (timedelta(seconds=5), "less than a minute"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(minutes=59), "59 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=23, minutes=59), "23 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=17, hours=5), "17 days"),
        (timedelta(days=89), "89 days"),
        (timedelta(days=90), "3 months"),
        (timedelta(days=729), "24 months"),
        (timedelta(days=800), "2 years"),
    ],
)
def test_age_says_how_long_ago_in_one_unit(ago, said):
    assert age(NOW - ago, NOW) == said


def test_age_of_nothing_is_empty():
    assert age(None) == ""


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Pacific/Honolulu", "UTC"])
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 8, 6, 59, 59, 123456, tzinfo=UTC),  # the night clocks go forward
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # the night they go back
        datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    ],
)
def test_iso_says_what_the_date_filter_said(zone, moment):
    """`iso` replaced `date:'Y-m-d\\TH:i:sO'` in every <time datetime>: the same text, in the
    active zone, to the second; except in the hour a zone repeats each autumn, where Django's
    "O" says nothing and `iso` still gives the offset."""
    template = Template("{% load dates %}{{ moment|date:'Y-m-d\\TH:i:sO' }}|{{ moment|iso }}")
    with timezone.override(ZoneInfo(zone)):
        old, new = template.render(Context({"moment": moment})).split("|")
    assert new == moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S%z")
    assert old in (new, new[:-5])


def test_iso_of_nothing_is_empty():
    assert iso(None) == ""
