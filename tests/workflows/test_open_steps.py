"""The stuck report's open steps (`OpenStep`), kept by the transitions: after every kind of
transition a client's rows are what a rebuild from its workflows gives; the rebuild command
and the daily task repair rows changed around the services, and say how many."""

import io
import logging
import re
from datetime import timedelta

import pytest
import time_machine
from celery.signals import beat_init
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients import services as client_services
from clients.models import Client
from tests.clients.factories import make_client
from tests.workflows.documents import upload
from workflows import credentials, open_steps, revalidation, services, tasks
from workflows.models import Credential, Enrollment, OpenStep
from workflows.rules import Party

pytestmark = pytest.mark.django_db

Rule = OpenStep.Rule


def assert_in_step(client) -> set[str]:
    """The client's kept rows equal a rebuild; returns the rules they hold."""
    stale, missing = open_steps.differences(Client.objects.filter(pk=client.pk))
    assert not stale, "rows kept that the workflows no longer give"
    assert not missing, f"rows the workflows give that are not kept: {sorted(missing)}"
    return set(OpenStep.objects.filter(client=client).values_list("rule", flat=True))


def test_every_kind_of_transition_keeps_the_rows_a_rebuild_gives(rivera, northwind_staff):
    staff, firm = northwind_staff, rivera.firm
    individual = rivera.profiles.get(kind="individual")
    pllc = rivera.profiles.exclude(kind="individual").get()
    provider = Party(name="Ana Rivera", is_provider=True)
    seen: set[str] = set()

    def step(call):
        result = call()
        seen.update(assert_in_step(rivera))
        return result

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        today = timezone.localdate(timezone=firm.zone)
        # Access: sent, claimed, sent back, rejected, sent again, expired by the scan.
        grant = step(
            lambda: services.grant_create(
                profile=individual, method="connection_request", actor=staff
            )
        )
        step(lambda: services.grant_claim_done(grant=grant, party=provider, actor=staff))
        step(lambda: services.grant_not_yet_done(grant=grant, actor=staff))
        step(lambda: services.grant_record_rejected(grant=grant, actor=staff))
        step(lambda: services.grant_send_again(grant=grant, actor=staff))
        traveller.shift(timedelta(days=31))
        step(services.grants_expire_due)
        # An application: a round signed and confirmed, a development request the provider
        # answers, a rejection, a corrected resubmission signed on paper.
        enrollment = step(
            lambda: services.enrollment_create(profile=individual, kind="initial", actor=staff)
        )
        first = step(lambda: services.round_open(enrollment=enrollment, actor=staff))
        step(
            lambda: services.round_claim_signed(signature_round=first, party=provider, actor=staff)
        )
        step(lambda: services.round_confirm(signature_round=first, actor=staff))
        request = step(
            lambda: services.development_open(
                enrollment=enrollment, actor=staff, asked="The license", holder="provider"
            )
        )
        step(lambda: services.development_claim_done(request=request, party=provider, actor=staff))
        step(lambda: services.development_record_answered(request=request, actor=staff))
        step(
            lambda: services.enrollment_record_outcome(
                enrollment=enrollment, outcome="rejected", actor=staff, reason="Unsigned"
            )
        )
        paper = step(
            lambda: services.round_open_revision(
                enrollment=enrollment, actor=staff, reason="Corrected", method="paper"
            )
        )
        step(
            lambda: services.round_claim_signed(signature_round=paper, party=provider, actor=staff)
        )
        # The PLLC: denied (a reconsideration window), and a revalidation due date.
        denied = step(lambda: services.enrollment_create(profile=pllc, kind="initial", actor=staff))
        step(
            lambda: services.enrollment_change_state(
                enrollment=denied, to=Enrollment.State.SUBMITTED, actor=staff
            )
        )
        step(
            lambda: services.enrollment_record_outcome(
                enrollment=denied,
                outcome="denied",
                actor=staff,
                decided_on=today,
                reason="Not eligible",
            )
        )
        step(
            lambda: revalidation.revalidation_set_due(
                profile=pllc, due_on=today + timedelta(days=40), actor=staff
            )
        )
        # The credentials file: asked for, sent, accepted with its expiry, asked again.
        kind = credentials.kind_for(firm, "malpractice")
        document = step(
            lambda: credentials.credential_request(profile=individual, kind=kind, actor=staff)
        )
        step(
            lambda: credentials.credential_upload(credential=document, upload=upload(), actor=staff)
        )
        step(
            lambda: credentials.credential_accept(
                credential=document, actor=staff, expires_on=today + timedelta(days=10)
            )
        )
        step(lambda: credentials.credential_request_renewal(credential=document, actor=staff))
        # A change made around the moves, then its clock stored again.
        Credential.objects.filter(pk=document.pk).update(expires_on=today - timedelta(days=3))
        document.refresh_from_db()
        step(lambda: credentials._set_clock(document))

    # In development with no request open is not reached through the services.
    assert set(Rule) - {Rule.IN_DEVELOPMENT} <= seen


def test_the_rebuild_command_repairs_rows_changed_around_the_services(
    rivera, northwind, northwind_staff, bluebird
):
    individual = rivera.profiles.get(kind="individual")
    services.grant_create(profile=individual, method="connection_request", actor=northwind_staff)
    services.enrollment_create(profile=individual, kind="initial", actor=northwind_staff)
    rows = OpenStep.objects.filter(client=rivera).order_by("pk")
    assert rows.count() == 3  # the request, the application, the client's open work
    rows.get(rule=Rule.ACCESS_PENDING).delete()  # missing
    garbled = rows.get(rule=Rule.PREPARING)
    OpenStep.objects.filter(pk=garbled.pk).update(since=garbled.since - timedelta(days=90))
    stray = rows.get(rule=Rule.IDLE_CLIENT)
    stray.pk, stray.object_id = None, stray.object_id + 1000
    stray.save()  # kept for nothing

    out = io.StringIO()
    call_command("rebuild_open_steps", stdout=out)
    assert "northwind: 1 clients, 2 stale rows removed, 2 missing rows added" in out.getvalue()
    assert "bluebird: 0 clients, 0 stale rows removed, 0 missing rows added" in out.getvalue()
    assert_in_step(rivera)
    assert rows.count() == 3

    again = io.StringIO()
    call_command("rebuild_open_steps", "--firm", "northwind", stdout=again)
    assert "0 stale rows removed, 0 missing rows added" in again.getvalue()
    assert "bluebird" not in again.getvalue()


def test_the_daily_task_repairs_and_logs_counts_only(rivera, northwind_staff, caplog):
    individual = rivera.profiles.get(kind="individual")
    services.enrollment_create(profile=individual, kind="initial", actor=northwind_staff)
    OpenStep.objects.filter(client=rivera).delete()
    with caplog.at_level(logging.INFO, logger="workflows.open_steps"):
        assert tasks.reconcile_open_steps() == 1  # one task per firm
    assert_in_step(rivera)
    assert tasks.reconcile_firm_open_steps(rivera.firm.pk) == 0  # nothing left to repair
    assert_in_step(rivera)
    repaired = [r for r in caplog.records if "repaired" in r.getMessage()]
    assert len(repaired) == 1
    assert f"firm {rivera.firm.pk} repaired: 0 stale rows removed, 2 missing" in (
        repaired[0].getMessage()
    )
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "Rivera" not in logged
    assert rivera.email not in logged


def test_reassigning_a_client_moves_its_steps_to_the_new_staff_member(
    rivera, northwind, northwind_staff, northwind_admin
):
    individual = rivera.profiles.get(kind="individual")
    services.grant_create(profile=individual, method="connection_request", actor=northwind_staff)
    assert set(OpenStep.objects.filter(client=rivera).values_list("assignee", flat=True)) == {
        northwind_staff.pk
    }
    client_services.client_update(client=rivera, actor=northwind_admin, assigned_staff=None)
    assert_in_step(rivera)
    assert set(OpenStep.objects.filter(client=rivera).values_list("assignee", flat=True)) == {None}
    client_services.client_update(
        client=rivera, actor=northwind_admin, assigned_staff=northwind_admin
    )
    assert_in_step(rivera)


def test_a_released_caseload_leaves_its_steps_unassigned(
    rivera, northwind, northwind_staff, northwind_admin
):
    individual = rivera.profiles.get(kind="individual")
    services.grant_create(profile=individual, method="connection_request", actor=northwind_staff)
    services.member_caseload_release(firm=northwind, user=northwind_staff, actor=northwind_admin)
    assert_in_step(rivera)
    assert not OpenStep.objects.filter(assignee=northwind_staff).exists()


def test_reconciling_repairs_the_next_deadline_too(rivera, northwind_staff):
    individual = rivera.profiles.get(kind="individual")
    grant = services.grant_create(
        profile=individual, method="connection_request", actor=northwind_staff
    )
    Client.objects.filter(pk=rivera.pk).update(next_deadline=grant.deadline + timedelta(days=9))
    result = open_steps.reconcile(rivera.firm)
    rivera.refresh_from_db()
    assert rivera.next_deadline == grant.deadline
    assert result["next_deadline"] == 1


def test_reconciling_locks_the_clients_in_id_order(rivera, northwind_staff):
    """The order every bulk refresh locks clients in: two batches over the same clients
    (the expiry scan and the daily reconcile) cannot deadlock."""
    with CaptureQueriesContext(connection) as captured:
        open_steps.reconcile(rivera.firm)
    locks = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    assert locks
    # the id is the one column selected: "ORDER BY 1" is the id
    assert all(
        re.search(r'SELECT "clients_client"."id" .* ORDER BY 1 ASC FOR UPDATE', sql)
        for sql in locks
    ), locks


def test_one_firm_that_fails_to_reconcile_does_not_stop_the_others(
    rivera, bluebird, bluebird_admin, northwind_staff, monkeypatch, caplog
):
    """One task per firm: a firm whose batch fails halfway (a deadlock, a lock timeout) is
    logged by its id and left for the next run; the others are reconciled."""
    individual = rivera.profiles.get(kind="individual")
    services.enrollment_create(profile=individual, kind="initial", actor=northwind_staff)
    OpenStep.objects.filter(client=rivera).delete()
    real = open_steps.differences

    def failing_for_bluebird(clients):
        result = real(clients)  # its queries have run: the batch fails halfway
        if clients.filter(firm=bluebird).exists():
            raise OperationalError("deadlock detected")
        return result

    make_client(bluebird, actor=bluebird_admin, last_name="Blue")
    monkeypatch.setattr(open_steps, "differences", failing_for_bluebird)
    with caplog.at_level(logging.ERROR, logger="workflows.tasks"):
        assert tasks.reconcile_open_steps() == 2
    assert_in_step(rivera)
    failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed == [f"open steps of firm {bluebird.pk} not reconciled; the next run tries again"]


def test_beat_starting_reconciles_the_open_steps(rivera, northwind_staff):
    """After a deploy (the table new, or a backup restored from before it), the rows are
    rebuilt when beat starts, not a day later."""
    individual = rivera.profiles.get(kind="individual")
    services.enrollment_create(profile=individual, kind="initial", actor=northwind_staff)
    OpenStep.objects.all().delete()
    beat_init.send(sender=None)
    assert_in_step(rivera)


def test_a_service_that_moves_several_steps_refreshes_the_read_models_once(rivera, northwind_staff):
    """Confirming a round moves its signer, the round and the application: three events,
    one rewrite of the client's next deadline and open steps, at the end (review of issue
    15, item 8)."""
    individual = rivera.profiles.get(kind="individual")
    enrollment = services.enrollment_create(
        profile=individual, kind="initial", actor=northwind_staff
    )
    signature_round = services.round_open(enrollment=enrollment, actor=northwind_staff)
    with CaptureQueriesContext(connection) as captured:
        services.round_confirm(signature_round=signature_round, actor=northwind_staff)
    sql = [q["sql"] for q in captured.captured_queries]
    assert sum(s.startswith('INSERT INTO "portal_auditevent"') for s in sql) == 3
    assert sum(s.startswith('DELETE FROM "workflows_openstep"') for s in sql) == 1
    assert sum(s.startswith('UPDATE "clients_client" SET "next_deadline"') for s in sql) == 1
    assert_in_step(rivera)
