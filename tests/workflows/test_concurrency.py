"""Two people act on the same step at the same moment: one wins, the other gets a clear
message, and the change is recorded once. Runs on real connections (one per thread)."""

import threading
import time

import pytest
from django.db import DatabaseError, connection, transaction

from clients.models import Client, Profile
from portal.errors import DomainError
from portal.models import AuditEvent
from workflows import services
from workflows.models import AccessGrant, Enrollment

pytestmark = pytest.mark.django_db(transaction=True)


def race(*actions):
    barrier = threading.Barrier(len(actions))
    outcomes = [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait(timeout=10)
            action()
            outcomes[index] = "ok"
        except DomainError as exc:
            outcomes[index] = exc.message
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_simultaneous_approvals_one_wins(rivera, northwind_staff, northwind_admin):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    grant = services.grant_create(
        profile=profile, method=AccessGrant.Method.CONNECTION_REQUEST, actor=northwind_staff
    )
    outcomes = race(
        lambda: services.grant_mark_active(grant=grant, actor=northwind_staff),
        lambda: services.grant_mark_active(grant=grant, actor=northwind_admin),
    )
    assert sorted(outcomes, key=str)[-1] == "ok"
    assert outcomes.count("ok") == 1
    refused = next(o for o in outcomes if o != "ok")
    assert "active" in refused
    assert (
        AuditEvent.objects.filter(verb="grant.active", target_id=str(grant.public_id)).count() == 1
    )


def test_two_simultaneous_revision_rounds_open_once(rivera, northwind_staff):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.round_confirm(signature_round=first, actor=northwind_staff)
    outcomes = race(
        lambda: services.round_open_revision(
            enrollment=enrollment, actor=northwind_staff, reason="A"
        ),
        lambda: services.round_open_revision(
            enrollment=enrollment, actor=northwind_staff, reason="B"
        ),
    )
    assert outcomes.count("ok") == 1
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.AWAITING_SIGNATURE
    assert enrollment.rounds.count() == 2


def test_confirming_a_round_while_its_application_is_edited_does_not_deadlock(
    rivera, northwind_staff
):
    """A transition locks the rows it moves parent first (the application, then its round),
    then the client: another transaction that holds the application and then wants the
    client (an edit of the application, a due date) waits instead of deadlocking (found by
    the review of issue 15)."""
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    signature_round = services.round_open(enrollment=enrollment, actor=northwind_staff)
    holding = threading.Event()
    errors = []

    def edit_the_application():
        # As enrollment_update does: the application's row first, then (by its event) the
        # client's; here with a pause between them in which the confirm runs.
        try:
            with transaction.atomic():
                list(Enrollment.objects.select_for_update().filter(pk=enrollment.pk))
                holding.set()
                time.sleep(1.0)
                list(Client.objects.select_for_update().filter(pk=rivera.pk))
        except DatabaseError as exc:
            errors.append(exc)
        finally:
            connection.close()

    def confirm():
        holding.wait(timeout=10)
        try:
            services.round_confirm(signature_round=signature_round, actor=northwind_staff)
        except DatabaseError as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=edit_the_application), threading.Thread(target=confirm)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    signature_round.refresh_from_db()
    assert signature_round.state == "confirmed"
