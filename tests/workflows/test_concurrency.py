"""Two people act on the same step at the same moment: one wins, the other gets a clear
message, and the change is recorded once. Runs on real connections (one per thread)."""

import threading

import pytest
from django.db import connection

from clients.models import Profile
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
