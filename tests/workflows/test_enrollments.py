"""Enrollments: at most one open per profile and kind (issue 11, finding 8)."""

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from clients.models import Profile
from workflows import services
from workflows.errors import TransitionError
from workflows.models import Enrollment

pytestmark = pytest.mark.django_db


@pytest.fixture
def individual(rivera):
    return rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)


def test_double_submitting_start_enrollment_opens_one(as_user, northwind_staff, individual):
    staff = as_user(northwind_staff)
    url = reverse("enrollment_create", args=[individual.public_id])
    first = staff.post(url, {"kind": "initial"})
    second = staff.post(url, {"kind": "initial"}, follow=True)
    assert first.status_code == 302
    assert Enrollment.objects.filter(profile=individual, kind="initial").count() == 1
    assert "already has an open initial enrollment" in second.content.decode()


def test_at_most_one_open_enrollment_per_profile_and_kind_is_a_database_rule(
    individual, northwind_staff
):
    services.enrollment_create(profile=individual, kind="initial", actor=northwind_staff)
    with pytest.raises(IntegrityError), transaction.atomic():
        Enrollment.objects.create(firm=individual.firm, profile=individual, kind="initial")


def test_another_kind_or_a_closed_one_does_not_block_a_new_enrollment(individual, northwind_staff):
    first = services.enrollment_create(profile=individual, kind="initial", actor=northwind_staff)
    services.enrollment_create(profile=individual, kind="revalidation", actor=northwind_staff)
    with pytest.raises(TransitionError):
        services.enrollment_create(profile=individual, kind="initial", actor=northwind_staff)
    services.enrollment_record_outcome(
        enrollment=first, outcome="withdrawn", reason="Started over", actor=northwind_staff
    )
    again = services.enrollment_create(profile=individual, kind="initial", actor=northwind_staff)
    assert again.is_open
