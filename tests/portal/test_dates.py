from datetime import UTC, datetime, timedelta

import pytest

from portal.templatetags.dates import age

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
