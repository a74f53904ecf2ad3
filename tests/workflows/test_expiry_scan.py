"""The expiry scan: every due request expires exactly once, in a number of queries that does
not grow with the number of rows, even with two scans running at once."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from clients.models import Client
from notifications.models import Notification
from portal.models import AuditEvent
from tests.clients.factories import make_client
from workflows import services
from workflows.models import AccessGrant


def due_requests(firm, staff, count):
    with time_machine.travel(timezone.now() - timedelta(days=31), tick=False):
        for _ in range(count):
            client = make_client(firm, actor=staff)
            services.grant_create(
                profile=client.profiles.get(), method="connection_request", actor=staff
            )


@pytest.mark.django_db
@pytest.mark.parametrize("count", [5, 40])
def test_scan_queries_do_not_grow_with_rows(
    northwind, northwind_staff, django_assert_num_queries, count
):
    due_requests(northwind, northwind_staff, count)
    # find due ids, lock and read them with their clients, expire them (one UPDATE), the
    # events (one INSERT), lock their clients in id order, clients' last activity, their
    # open steps (one DELETE, one INSERT), notifications: cancel reminders, read clients
    # and staff, insert messages; then one more look that finds nothing due
    with django_assert_num_queries(14):
        assert services.grants_expire_due() == count
    assert AccessGrant.objects.filter(state="expired").count() == count


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 20])
def test_unassigned_clients_in_several_firms_cost_one_admin_lookup(
    northwind,
    northwind_staff,
    northwind_admin,
    bluebird,
    bluebird_admin,
    django_assert_num_queries,
    count,
):
    """Nobody assigned: the firms' admins are told, read for every firm at once."""
    for firm, actor in ((northwind, northwind_staff), (bluebird, bluebird_admin)):
        due_requests(firm, actor, count)
    Client.objects.update(assigned_staff=None)
    with django_assert_num_queries(15):  # the scan above, plus one query for the admins
        assert services.grants_expire_due() == 2 * count
    staff_alerts = Notification.objects.filter(kind="grant.expired_staff", channel="in_app")
    assert set(staff_alerts.values_list("recipient", flat=True)) == {
        northwind_admin.pk,
        bluebird_admin.pk,
    }
    assert staff_alerts.count() == 2 * count


@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_expire_each_request_once(northwind, northwind_staff, monkeypatch):
    from notifications import outbox

    monkeypatch.setattr(outbox, "request_delivery", lambda: None)
    due_requests(northwind, northwind_staff, 30)
    barrier = threading.Barrier(2)
    results = []

    def scan():
        try:
            barrier.wait(timeout=10)
            results.append(services.grants_expire_due(batch_size=7))
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(results) == 30
    assert AuditEvent.objects.filter(verb="grant.expired").count() == 30
    assert AccessGrant.objects.filter(state="expired").count() == 30
