"""A step replaced by a new one is settled everywhere: an expired or rejected access request
when staff start a new request (instead of pressing "Send again"), a rejected application
when staff start a new one of its kind; and a rejected revalidation keeps its due date in
view (found by the review of the case file, 2026-12-04)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from clients.models import NO_DEADLINE, Client
from notifications.models import Notification
from portal.errors import DomainError
from tests.workflows.test_casefile import case_of, individual
from tests.workflows.test_open_steps import assert_in_step
from workflows import revalidation, services
from workflows.models import Enrollment, OpenStep
from workflows.selectors import STAGE_FILTERS

pytestmark = pytest.mark.django_db

Rule = OpenStep.Rule


def test_a_new_request_settles_the_expired_one_it_replaces(rivera, northwind_staff):
    profile = individual(rivera)
    old = services.grant_create(profile=profile, method="connection_request", actor=northwind_staff)
    services.grant_record_expired(grant=old, actor=northwind_staff)
    assert Rule.ACCESS_EXPIRED in assert_in_step(rivera)

    new = services.grant_create(profile=profile, method="connection_request", actor=northwind_staff)

    assert new.previous_id == old.pk
    assert case_of(rivera, history=True).individual.retryable == []
    assert Rule.ACCESS_EXPIRED not in assert_in_step(rivera)
    with pytest.raises(DomainError, match="already sent again"):
        services.grant_send_again(grant=old, actor=northwind_staff)


def test_a_closed_request_says_the_day_it_closed_not_its_deadline(as_user, rivera, northwind_staff):
    start = timezone.now().replace(month=3, day=2, hour=15)
    with time_machine.travel(start, tick=False):
        grant = services.grant_create(
            profile=individual(rivera), method="connection_request", actor=northwind_staff
        )
    with time_machine.travel(start + timedelta(days=5), tick=False):
        services.grant_record_rejected(grant=grant, actor=northwind_staff, reason="Wrong NPI")
        page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    # The day it was rejected, not its day-30 deadline, which it never reached.
    rejected_on = (start + timedelta(days=5)).astimezone(rivera.firm.zone)
    shown = f"{rejected_on:%b} {rejected_on.day}, {rejected_on.year}"
    assert re.search(rf"rejected on <time[^>]*>{shown}</time>", page.content.decode())


def rejected(profile, staff, kind="initial") -> Enrollment:
    enrollment = services.enrollment_create(profile=profile, kind=kind, actor=staff)
    services.enrollment_change_state(enrollment=enrollment, to="submitted", actor=staff)
    return services.enrollment_record_outcome(
        enrollment=enrollment, outcome="rejected", actor=staff, reason="Missing the license"
    )


def test_a_rejected_application_replaced_by_a_new_one_is_settled(rivera, northwind_staff):
    profile = individual(rivera)
    old = rejected(profile, northwind_staff)
    assert Rule.REJECTED in assert_in_step(rivera)
    assert Client.objects.filter(STAGE_FILTERS["rejected"](), pk=rivera.pk).exists()

    services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)

    case = case_of(rivera, history=True)
    old_file = next(e for e in case.individual.enrollments if e.enrollment.pk == old.pk)
    assert not old_file.resubmits
    assert not old_file.may_open_round
    assert "Rejected: resubmit it corrected" not in [i.state for i in case.open_items]
    assert Rule.REJECTED not in assert_in_step(rivera)
    assert not Client.objects.filter(STAGE_FILTERS["rejected"](), pk=rivera.pk).exists()
    with pytest.raises(DomainError, match="newer initial enrollment"):
        services.round_open_revision(enrollment=old, actor=northwind_staff, reason="Fixed")


def test_a_rejected_application_not_replaced_is_still_to_resubmit(rivera, northwind_staff):
    profile = individual(rivera)
    old = rejected(profile, northwind_staff)
    services.enrollment_create(profile=profile, kind="revalidation", actor=northwind_staff)
    old_file = next(e for e in case_of(rivera).individual.enrollments if e.enrollment.pk == old.pk)
    assert old_file.resubmits
    assert old_file.may_open_round
    assert Rule.REJECTED in assert_in_step(rivera)


def test_a_rejected_revalidation_shows_the_due_date_its_clock_still_runs_to(
    as_user, rivera, northwind_staff
):
    today = timezone.localdate(timezone=rivera.firm.zone)
    due = today + timedelta(days=40)
    enrollment = revalidation.revalidation_set_due(
        profile=individual(rivera), due_on=due, actor=northwind_staff
    )
    services.enrollment_change_state(enrollment=enrollment, to="submitted", actor=northwind_staff)
    services.enrollment_record_outcome(
        enrollment=enrollment, outcome="rejected", actor=northwind_staff, reason="Unsigned"
    )
    enrollment.refresh_from_db()
    assert enrollment.revalidation_clock_runs

    case = case_of(rivera)
    item = next(i for i in case.open_items if i.state == "Rejected: resubmit it corrected")
    assert item.deadline == enrollment.deadline
    assert case.individual.current_revalidation == enrollment  # the one a new date updates
    text = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    text = text.content.decode()
    assert f'value="{due:%Y-%m-%d}"' in text  # the due-date form shows its date


def test_a_met_revalidation_date_gets_no_due_badge(as_user, rivera, northwind_staff):
    today = timezone.localdate(timezone=rivera.firm.zone)
    enrollment = revalidation.revalidation_set_due(
        profile=individual(rivera), due_on=today - timedelta(days=3), actor=northwind_staff
    )
    services.enrollment_change_state(enrollment=enrollment, to="submitted", actor=northwind_staff)
    text = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    assert "days overdue" not in text.content.decode()


def test_a_revalidation_started_over_a_rejected_one_takes_its_due_date(rivera, northwind_staff):
    """The due date is CMS's, the provider's: a new revalidation started instead of
    resubmitting the rejected one carries it, alerts and all, and the rejected one's clock
    stops everywhere (the caseload's order, the stuck report, the calendar)."""
    profile = individual(rivera)
    due = timezone.localdate(timezone=rivera.firm.zone) + timedelta(days=40)
    old = revalidation.revalidation_set_due(profile=profile, due_on=due, actor=northwind_staff)
    services.enrollment_change_state(enrollment=old, to="submitted", actor=northwind_staff)
    services.enrollment_record_outcome(
        enrollment=old, outcome="rejected", actor=northwind_staff, reason="Unsigned"
    )

    new = services.enrollment_create(profile=profile, kind="revalidation", actor=northwind_staff)

    new.refresh_from_db()
    assert new.due_on == due
    assert case_of(rivera).individual.current_revalidation == new
    revalidations = OpenStep.objects.filter(client=rivera, rule=Rule.REVALIDATION)
    assert list(revalidations.values_list("object_id", flat=True)) == [new.pk]
    assert_in_step(rivera)
    alerts = Notification.objects.filter(kind__startswith="revalidation.", state="scheduled")
    assert alerts.filter(subject_id=str(new.public_id)).exists()
    assert not alerts.filter(subject_id=str(old.public_id)).exists()

    services.enrollment_change_state(enrollment=new, to="submitted", actor=northwind_staff)
    rivera.refresh_from_db()
    assert rivera.next_deadline == NO_DEADLINE  # the date met; the rejected one counts for nothing
    assert not Client.objects.filter(STAGE_FILTERS["revalidation"](), pk=rivera.pk).exists()
