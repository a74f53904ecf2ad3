"""Defects a reviewer found in the credentials file and the revalidation clock (issue 14),
each replayed here before its fix."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from notifications.models import Notification
from reports.reports import ReportFilters, stuck_report
from tests.clients.factories import make_client
from tests.workflows.documents import phone_photo, upload
from workflows import credentials as services
from workflows import services as workflow_services
from workflows.deadlines import status_of
from workflows.errors import TransitionError
from workflows.models import Credential, Enrollment
from workflows.revalidation import revalidation_set_due
from workflows.rules import Party

pytestmark = pytest.mark.django_db


def individual(client):
    return client.profiles.get(kind="individual")


def today(firm):
    return timezone.now().astimezone(firm.zone).date()


def provider(client):
    return Party(name=client.display_name, is_provider=True)


def scheduled(credential, kind):
    """The scheduled emails of `kind` about `credential`, to the provider herself (her office
    manager, an Access Manager, gets the same)."""
    return Notification.objects.filter(
        subject_id=str(credential.public_id),
        kind=kind,
        state="scheduled",
        channel="email",
        to_email=credential.profile.client.email,
    )


def request(client, staff, code="malpractice", **extra):
    return services.credential_request(
        profile=individual(client), kind=services.kind_for(client.firm, code), actor=staff, **extra
    )


def on_file(client, staff, *, expires_in, code="malpractice"):
    return services.credential_add(
        profile=individual(client),
        kind=services.kind_for(client.firm, code),
        actor=staff,
        expires_on=today(client.firm) + timedelta(days=expires_in),
        upload=upload(),
    )


def revalidation_alerts(enrollment):
    return Notification.objects.filter(
        subject_id=str(enrollment.public_id),
        kind__startswith="revalidation.",
        state="scheduled",
    )


# --- 1 and 5: the revalidation's clock ------------------------------------------------


def test_a_withdrawn_revalidation_does_not_swallow_its_due_date(rivera, northwind_staff):
    due = today(rivera.firm) + timedelta(days=100)
    enrollment = revalidation_set_due(profile=individual(rivera), due_on=due, actor=northwind_staff)
    workflow_services.enrollment_record_outcome(
        enrollment=enrollment, outcome="withdrawn", reason="Provider retired", actor=northwind_staff
    )
    again = revalidation_set_due(profile=individual(rivera), due_on=due, actor=northwind_staff)
    assert again is not None
    assert again.pk != enrollment.pk
    assert revalidation_alerts(again).exists()
    assert Client.objects.get(pk=rivera.pk).next_deadline == again.deadline


def test_a_rejected_revalidation_keeps_its_clock_and_alerts(rivera, northwind_staff):
    due = today(rivera.firm) + timedelta(days=100)
    enrollment = revalidation_set_due(profile=individual(rivera), due_on=due, actor=northwind_staff)
    workflow_services.enrollment_change_state(
        enrollment=enrollment, to="submitted", actor=northwind_staff
    )
    workflow_services.enrollment_record_outcome(
        enrollment=enrollment, outcome="rejected", reason="Unsigned", actor=northwind_staff
    )
    assert revalidation_alerts(enrollment).exists()
    assert Client.objects.get(pk=rivera.pk).next_deadline == enrollment.deadline
    # the list imported again finds the rejected application: it carries the date
    assert (
        revalidation_set_due(profile=individual(rivera), due_on=due, actor=northwind_staff).pk
        == enrollment.pk
    )


def test_a_submitted_revalidation_has_met_its_due_date(rivera, northwind_staff):
    due = today(rivera.firm) + timedelta(days=40)
    enrollment = revalidation_set_due(profile=individual(rivera), due_on=due, actor=northwind_staff)
    assert revalidation_alerts(enrollment).exists()
    workflow_services.enrollment_change_state(
        enrollment=enrollment, to="submitted", actor=northwind_staff
    )
    assert not revalidation_alerts(enrollment).exists()
    assert Client.objects.get(pk=rivera.pk).next_deadline.year == 9999
    membership = northwind_staff.memberships.get()
    rows, _ = stuck_report(membership=membership, filters=ReportFilters()).rows()
    assert not [row for row in rows if row["item_stage"] == "revalidation"]


def test_a_slow_submitted_revalidation_is_still_listed_as_slow(rivera, northwind_staff):
    due = today(rivera.firm) + timedelta(days=40)
    with time_machine.travel(timezone.now() - timedelta(days=50)):
        enrollment = revalidation_set_due(
            profile=individual(rivera), due_on=due + timedelta(days=50), actor=northwind_staff
        )
        workflow_services.enrollment_change_state(
            enrollment=enrollment, to="submitted", actor=northwind_staff
        )
    membership = northwind_staff.memberships.get()
    rows, _ = stuck_report(membership=membership, filters=ReportFilters()).rows()
    assert [
        row["item_stage"] for row in rows if row["object_public_id"] == enrollment.public_id
    ] == ["submitted"]


# --- 2 and 3: reminders after a rejection, a renewal, a receipt -----------------------


def test_a_rejection_after_the_due_date_schedules_new_reminders(rivera, northwind_staff):
    credential = request(rivera, northwind_staff, due_on=today(rivera.firm) + timedelta(days=2))
    with time_machine.travel(timezone.now() + timedelta(days=5)):
        services.credential_upload(
            credential=credential, upload=phone_photo(), actor=rivera.user, party=provider(rivera)
        )
        services.credential_reject(credential=credential, actor=northwind_staff, reason="Blurry")
        credential.refresh_from_db()
        assert credential.due_on > today(rivera.firm)
        assert scheduled(credential, "credential.reminder").count() == 3


def test_a_rejected_renewal_is_reminded(rivera, northwind_staff):
    credential = on_file(rivera, northwind_staff, expires_in=40)
    services.credential_upload(
        credential=credential, upload=phone_photo(), actor=rivera.user, party=provider(rivera)
    )
    services.credential_reject(credential=credential, actor=northwind_staff, reason="Old policy")
    assert scheduled(credential, "credential.reminder").count() == 3


def test_a_second_request_with_the_same_due_date_is_reminded(rivera, northwind_staff):
    due = today(rivera.firm) + timedelta(days=14)
    credential = request(rivera, northwind_staff, due_on=due)
    services.credential_upload(credential=credential, upload=upload(), actor=northwind_staff)
    services.credential_accept(
        credential=credential,
        actor=northwind_staff,
        expires_on=today(rivera.firm) + timedelta(days=300),
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        services.credential_request_renewal(
            credential=credential, actor=northwind_staff, due_on=due
        )
    assert scheduled(credential, "credential.reminder").count() == 3


def test_the_provider_is_not_reminded_to_renew_what_they_sent(rivera, northwind_staff):
    credential = on_file(rivera, northwind_staff, expires_in=40)
    assert scheduled(credential, "credential.expiry_reminder").exists()
    services.credential_upload(
        credential=credential, upload=phone_photo(), actor=rivera.user, party=provider(rivera)
    )
    assert not scheduled(credential, "credential.expiry_reminder").exists()
    assert Notification.objects.filter(  # the staff side is still warned
        subject_id=str(credential.public_id), kind="credential.expiry_alert", state="scheduled"
    ).exists()
    services.credential_reject(credential=credential, actor=northwind_staff, reason="Old policy")
    assert scheduled(credential, "credential.expiry_reminder").exists()


# --- 4: the caseload reads each row's firm once -----------------------------------------


@pytest.mark.parametrize("clients", [1, 6])
def test_caseload_budget_with_credentials_does_not_grow(
    as_user, northwind, northwind_staff, django_assert_num_queries, clients
):
    for number in range(clients):
        client = make_client(
            northwind,
            actor=northwind_staff,
            last_name=f"Cred{number}",
            assigned_staff=northwind_staff,
        )
        on_file(client, northwind_staff, expires_in=10)
    browser = as_user(northwind_staff)
    browser.get(reverse("dashboard"))
    # As tests/workflows/test_caseload.py names them (staff: no staff list for the filter).
    with django_assert_num_queries(9):
        assert browser.get(reverse("dashboard")).status_code == 200


# --- 6: a crafted "clear" of the file input -------------------------------------------


def test_a_cleared_file_input_is_a_message_not_a_500(as_user, rivera, northwind_staff):
    url = reverse("credential_create", args=[rivera.public_id, "add"])
    response = as_user(northwind_staff).post(
        url,
        {
            "kind": str(services.kind_for(rivera.firm, "w9").public_id),
            "profile": str(individual(rivera).public_id),
            "document-clear": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert b"Upload the W-9" in response.content
    assert not Credential.objects.exists()


# --- 7: expired whatever the state ------------------------------------------------------


def test_an_expired_credential_stays_expired_while_its_renewal_is_reviewed(rivera, northwind_staff):
    credential = on_file(rivera, northwind_staff, expires_in=20)
    Credential.objects.filter(pk=credential.pk).update(
        expires_on=today(rivera.firm) - timedelta(days=3)
    )
    credential.refresh_from_db()
    services._set_clock(credential)
    services.credential_upload(credential=credential, upload=upload(), actor=northwind_staff)
    credential.refresh_from_db()
    status, label = status_of(credential, rivera.firm)
    assert status == "expired"
    assert label == "Expired; received, awaiting review"
    membership = northwind_staff.memberships.get()
    rows, _ = stuck_report(membership=membership, filters=ReportFilters()).rows()
    mine = [row for row in rows if row["object_public_id"] == credential.public_id]
    assert [(row["item_stage"], row["item_reason"]) for row in mine] == [
        ("credential", "credential_expired")
    ]


# --- 8: a double submit asks once -----------------------------------------------------


def test_asking_twice_for_the_same_document_is_refused(rivera, northwind_staff):
    request(rivera, northwind_staff, "state_license", state_code="TX")
    with pytest.raises(TransitionError, match="already asked"):
        request(rivera, northwind_staff, "state_license", state_code="TX")
    request(rivera, northwind_staff, "state_license", state_code="NM")  # another state
    request(rivera, northwind_staff, "other", note="Hospital privileges letter")
    request(rivera, northwind_staff, "other", note="Diploma")  # "other" may repeat
    assert Credential.objects.count() == 4


# --- 9: nothing to send for a credential on file and far from its expiry ----------------


def test_the_provider_cannot_reopen_a_credential_on_file(rivera, northwind_staff):
    far = on_file(rivera, northwind_staff, expires_in=700)
    w9 = services.credential_add(
        profile=individual(rivera),
        kind=services.kind_for(rivera.firm, "w9"),
        actor=northwind_staff,
        upload=upload(),
    )
    for credential in (far, w9):
        with pytest.raises(TransitionError, match="on file"):
            services.credential_upload(
                credential=credential, upload=upload(), actor=rivera.user, party=provider(rivera)
            )
        credential.refresh_from_db()
        assert credential.state == Credential.State.ACCEPTED
    assert Enrollment.objects.count() == 0
