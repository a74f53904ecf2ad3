"""Fixtures for the tests of letters' dates: a fixed "now" in the firm's zone and an
application with the contractor."""

from datetime import datetime

import pytest
import time_machine

from clients.models import Profile
from workflows import services

# Noon in Chicago on a Wednesday, far from any DST change.
LETTERS_NOW = datetime.fromisoformat("2026-10-14T12:00:00-05:00")


@pytest.fixture
def letters_now():
    with time_machine.travel(LETTERS_NOW, tick=False):
        yield LETTERS_NOW


@pytest.fixture
def chicago_firm(northwind):
    northwind.time_zone = "America/Chicago"
    northwind.save()
    return northwind


@pytest.fixture
def submitted(letters_now, chicago_firm, rivera, northwind_staff):
    """Rivera's individual initial enrollment, submitted to the contractor."""
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    return services.enrollment_change_state(
        enrollment=enrollment, to="submitted", actor=northwind_staff
    )
