"""Defects a review of issue 10's change found, each replayed here before its fix."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from clients.models import Profile
from notifications.models import Notification
from workflows import services
from workflows.errors import TransitionError
from workflows.models import DevelopmentRequest, Enrollment, SignatureRound
from workflows.rules import Party

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("letters_now")]


def provider(rivera):
    return Party(name=rivera.display_name, is_provider=True)


def in_development(submitted, staff, holder="provider"):
    return services.development_open(
        enrollment=submitted, actor=staff, asked="A lease", holder=holder
    )


def test_a_revision_signed_while_in_development_goes_back_into_development(
    submitted, northwind_staff
):
    in_development(submitted, northwind_staff)
    revision = services.round_open_revision(
        enrollment=submitted, actor=northwind_staff, reason="Address corrected"
    )
    services.round_confirm(signature_round=revision, actor=northwind_staff)
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.IN_DEVELOPMENT


def test_cancelling_a_revision_returns_the_application_where_it_was(submitted, northwind_staff):
    revision = services.round_open_revision(
        enrollment=submitted, actor=northwind_staff, reason="Address corrected"
    )
    services.round_cancel(signature_round=revision, actor=northwind_staff, reason="Not needed")
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.SUBMITTED
    in_development(submitted, northwind_staff)
    revision = services.round_open_revision(
        enrollment=submitted, actor=northwind_staff, reason="Address corrected"
    )
    services.round_cancel(signature_round=revision, actor=northwind_staff, reason="Not needed")
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.IN_DEVELOPMENT


def test_an_approval_can_be_recorded_while_a_revision_waits_for_its_signature(
    submitted, northwind_staff
):
    revision = services.round_open_revision(
        enrollment=submitted, actor=northwind_staff, reason="Address corrected"
    )
    services.enrollment_record_outcome(
        enrollment=submitted,
        outcome="approved",
        effective_date=date(2026, 9, 1),
        actor=northwind_staff,
    )
    revision.refresh_from_db()
    assert revision.state == SignatureRound.State.CANCELLED


def test_change_state_cannot_take_an_application_out_of_development(submitted, northwind_staff):
    request = in_development(submitted, northwind_staff)
    with pytest.raises(TransitionError):
        services.enrollment_change_state(
            enrollment=submitted, to="submitted", actor=northwind_staff
        )
    submitted.refresh_from_db()
    assert submitted.state == Enrollment.State.IN_DEVELOPMENT
    assert request.is_open


def test_reminders_scheduled_per_round_before_signers_existed_stop_when_signed(
    rivera, submitted, northwind_staff
):
    """Rounds open at the deploy have their reminders filed against the round."""
    revision = services.round_open_revision(
        enrollment=submitted, actor=northwind_staff, reason="Address corrected"
    )
    legacy = Notification.objects.filter(kind="round.reminder", channel="email").first()
    Notification.objects.filter(pk=legacy.pk).update(
        subject_type="signatureround", subject_id=str(revision.public_id)
    )
    services.round_claim_signed(signature_round=revision, party=provider(rivera), actor=rivera.user)
    legacy.refresh_from_db()
    assert legacy.state == Notification.State.CANCELLED


def test_sending_back_a_mailed_round_is_refused(rivera, submitted, northwind_staff):
    paper = services.round_open_revision(
        enrollment=submitted, actor=northwind_staff, reason="Fix", method="paper"
    )
    services.round_claim_signed(signature_round=paper, party=provider(rivera), actor=rivera.user)
    with pytest.raises(TransitionError):
        services.round_not_yet_signed(signature_round=paper, actor=northwind_staff)
    assert paper.signers.get().state == "says_signed"


def test_staff_alerts_stop_when_every_signer_says_signed(rivera, submitted, northwind_staff):
    revision = services.round_open_revision(
        enrollment=submitted, actor=northwind_staff, reason="Address corrected"
    )
    services.round_claim_signed(signature_round=revision, party=provider(rivera), actor=rivera.user)
    assert not Notification.objects.filter(
        subject_id=str(revision.public_id),
        kind__in=["round.staff_alert", "round.overdue"],
        state=Notification.State.SCHEDULED,
    ).exists()


def test_who_holds_the_application_follows_its_development_requests(
    rivera, submitted, northwind_staff
):
    request = in_development(submitted, northwind_staff, holder="provider")
    services.development_claim_done(request=request, party=provider(rivera), actor=rivera.user)
    submitted.refresh_from_db()
    assert submitted.holder == "firm"  # the firm checks what arrived
    services.development_not_yet_done(request=request, actor=northwind_staff)
    submitted.refresh_from_db()
    assert submitted.holder == "provider"


def test_an_old_denial_is_recorded_with_the_window_its_letter_gives(
    chicago_firm, submitted, northwind_staff
):
    chicago_firm.reconsideration_days = 120
    chicago_firm.save()
    submitted.refresh_from_db()
    today = timezone.now().astimezone(chicago_firm.zone).date()
    denied = services.enrollment_record_outcome(
        enrollment=submitted,
        outcome="denied",
        reason="Not eligible",
        decided_on=today - timedelta(days=90),
        actor=northwind_staff,
    )
    assert denied.reconsideration == Enrollment.Reconsideration.OPEN


def test_a_reconsideration_window_past_its_deadline_closes_by_itself(
    rivera, submitted, northwind_staff
):
    denied = services.enrollment_record_outcome(
        enrollment=submitted, outcome="denied", reason="Not eligible", actor=northwind_staff
    )
    assert services.reconsiderations_lapse_due() == 0
    later = denied.reconsideration_deadline + timedelta(minutes=1)
    assert services.reconsiderations_lapse_due(now=later) == 1
    denied.refresh_from_db()
    assert denied.reconsideration == Enrollment.Reconsideration.LAPSED
    rivera.refresh_from_db()
    assert rivera.next_deadline > later + timedelta(days=365)


def test_a_rejected_application_stays_on_the_firms_list(
    northwind_admin, submitted, northwind_staff
):
    from reports.reports import ReportFilters, stuck_report
    from workflows.selectors import CaseloadFilters, caseload_matching

    services.enrollment_record_outcome(
        enrollment=submitted, outcome="rejected", reason="Unsigned", actor=northwind_staff
    )
    membership = northwind_admin.memberships.get()
    matching = caseload_matching(membership=membership, filters=CaseloadFilters(holder="firm"))
    assert matching.filter(pk=submitted.profile.client_id).exists()
    rows, _ = stuck_report(membership=membership, filters=ReportFilters()).rows(limit=50)
    assert ("rejected", "rejected_not_resubmitted") in {
        (row["item_stage"], row["item_reason"]) for row in rows
    }


def test_a_response_recorded_on_its_day_ends_development_on_that_day(submitted, northwind_staff):
    from django.db.models import Q

    from portal.models import AuditEvent

    request = in_development(submitted, northwind_staff, holder="firm")
    yesterday = request.letter_on
    services.development_record_answered(
        request=request, actor=northwind_staff, responded_on=yesterday
    )
    event = AuditEvent.objects.filter(
        Q(data__to="submitted"), target_id=str(submitted.public_id)
    ).latest("id")
    assert event.data["cms_date"] == yesterday.isoformat()
    assert DevelopmentRequest.objects.get().responded_on == yesterday
    assert Profile.objects.exists()
