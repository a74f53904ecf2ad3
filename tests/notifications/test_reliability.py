"""Notifications are never lost and never sent twice: real worker, real broker, real SMTP.

Every test here runs `celery worker` subprocesses (or threads) against the test database and
an SMTP sink, injects one fault (none, a broker outage, a worker SIGKILLed mid-batch, two
sweeps at once, the SMTP connection or the database failing inside the two-phase send), and
counts what the sink received by Message-ID: every due email exactly once, nothing that is
not due. `make chaos` (devtools/chaos.py) runs the same faults at scale;
docs/reliability.md explains the machinery.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from clients.models import Profile
from notifications import delivery
from notifications.models import Notification
from notifications.outbox import Message, schedule
from notifications.tasks import deliver_due
from portal.celery import app as celery_app
from tests.clients.factories import make_client
from workflows import services
from workflows.models import AccessGrant

# Transactional: workers are other processes (and the thread test uses other connections),
# they see committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)

DELIVERY_TIMEOUT = 30.0
GRACE_PERIOD = 2.0  # after the last expected message: time for a duplicate to show up
TASK_SUCCEEDED = r"Task notifications\.tasks\.deliver_due\[[0-9a-f-]+\] succeeded"
SENT_BY_TASK = re.compile(TASK_SUCCEEDED + r" in [0-9.]+s: \{'sent': (\d+)")


@pytest.fixture
def publish_to_broker(settings):
    """Turn eager mode off for this process, so `.delay()` (and the outbox's on-commit
    request) publishes to the broker instead of delivering here."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = previous


# --- helpers -----------------------------------------------------------------------------


def due_emails() -> dict[str, Notification]:
    """The email rows due now, by Message-ID (what must arrive, once each)."""
    rows = Notification.objects.filter(
        channel=Notification.Channel.EMAIL, due_at__lte=timezone.now()
    ).exclude(state=Notification.State.CANCELLED)
    return {row.message_id: row for row in rows}


def reminders(firm, count: int, *, prefix: str, due_at=None) -> list[Message]:
    """`count` reminders due now, to `count` different people (no accounts: email only)."""
    now = due_at or timezone.now() - timedelta(seconds=1)
    return [
        Message(
            firm=firm,
            kind="test.reminder",
            subject_type="test",
            subject_id=f"{prefix}-{number}",
            step="due",
            due_at=now,
            template="notification",
            to_email=f"{prefix}-{number}@clinic.test",
            context={
                "subject": f"Reminder {number}",
                "headline": "Please sign",
                "lines": [f"Reminder number {number} of a test batch."],
                "name": f"Provider {number}",
            },
            channels=(Notification.Channel.EMAIL,),
        )
        for number in range(count)
    ]


def schedule_due(firm, count: int, *, prefix: str = "r", request: bool = True) -> set[str]:
    """Commit `count` due reminders in one transaction; returns their Message-IDs. With
    `request`, delivery is asked for on commit, as a transition does; without, the rows are
    stored for later and then made due, so that only the sweep finds them."""
    later = None if request else timezone.now() + timedelta(days=1)
    with transaction.atomic():
        schedule(reminders(firm, count, prefix=prefix, due_at=later))
    if not request:
        Notification.objects.filter(subject_id__startswith=f"{prefix}-").update(
            due_at=timezone.now() - timedelta(seconds=1)
        )
    ids = set(due_emails())
    assert len(ids) == count
    return ids


def assert_each_exactly_once(sink, expected: set[str]) -> None:
    received = Counter(sink.message_ids())
    duplicated = sorted(mid for mid, times in received.items() if times > 1)
    lost = sorted(expected - received.keys())
    unexpected = sorted(received.keys() - expected)
    assert not duplicated, f"{len(duplicated)} message(s) sent twice: {duplicated[:5]}"
    assert not lost, f"{len(lost)} of {len(expected)} due message(s) never arrived: {lost[:5]}"
    assert not unexpected, f"{len(unexpected)} message(s) not due were sent: {unexpected[:5]}"


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def sweep_until_delivered(sink, expected: set[str], timeout: float, interval: float = 1.0):
    """Run the sweep (what beat runs every minute) every `interval` seconds until every
    expected Message-ID arrived; a publish that fails (broker still away) is retried."""
    deadline = time.monotonic() + timeout
    while not expected <= set(sink.message_ids()):
        if time.monotonic() >= deadline:
            return
        with contextlib.suppress(Exception):  # broker not back yet: the next round retries
            deliver_due.delay()
        sink._wait_until(lambda _n: expected <= set(sink.message_ids()), interval)


def sent_by(worker) -> int:
    """How many emails the worker's deliver_due runs reported sent (from its log)."""
    return sum(int(sent) for sent in SENT_BY_TASK.findall(worker.log()))


def assert_all_sent(ids: set[str]) -> None:
    states = Counter(
        Notification.objects.filter(message_id__in=ids).values_list("state", flat=True)
    )
    assert states == {Notification.State.SENT: len(ids)}, states


# --- 1. the happy path, end to end -------------------------------------------------------


@pytest.mark.worker
def test_a_transition_email_reaches_smtp_exactly_once(
    celery_worker_process, smtp_sink, publish_to_broker, rivera, northwind_staff
):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)

    # Atomic: when it returns, the rows are committed and the on-commit request published.
    grant = services.grant_create(
        profile=profile, method=AccessGrant.Method.CONNECTION_REQUEST, actor=northwind_staff
    )

    due = due_emails()
    assert {row.kind for row in due.values()} == {"grant.requested"}
    assert {row.to_email for row in due.values()} >= {"rivera@clinic.test"}
    later = Notification.objects.filter(
        subject_id=str(grant.public_id),
        channel=Notification.Channel.EMAIL,
        due_at__gt=timezone.now(),
    )
    assert later.filter(kind="grant.reminder").exists()  # reminders are not due yet

    smtp_sink.wait_for(len(due), timeout=DELIVERY_TIMEOUT)
    smtp_sink.assert_no_more_than(len(due), within=GRACE_PERIOD)
    assert_each_exactly_once(smtp_sink, set(due))
    assert_all_sent(set(due))
    assert set(later.values_list("state", flat=True)) == {Notification.State.SCHEDULED}

    message = next(m for m in smtp_sink.messages if m["To"].addresses[0].username == "rivera")
    assert "approve" in message["Subject"].lower()
    assert "Northwind Credentialing" in str(message["From"])
    assert message.get_body(preferencelist=("html",)) is not None


# --- 2. the broker goes away while transitions commit -----------------------------------


@pytest.mark.worker
def test_a_broker_outage_delays_messages_but_loses_none(
    private_broker, celery_workers, smtp_sink, publish_to_broker, northwind, northwind_staff
):
    profiles = [make_client(northwind, actor=northwind_staff).profiles.get() for _ in range(8)]
    worker = celery_workers.start()

    def send_request(profile):
        started = time.monotonic()
        grant = services.grant_create(
            profile=profile, method=AccessGrant.Method.CONNECTION_REQUEST, actor=northwind_staff
        )
        return grant, time.monotonic() - started

    # Broker up: delivered at once through the on-commit request.
    for profile in profiles[:2]:
        send_request(profile)
    before = set(due_emails())
    assert len(before) == 2
    smtp_sink.wait_for(2, timeout=DELIVERY_TIMEOUT)
    worker.wait_for_log(TASK_SUCCEEDED, timeout=DELIVERY_TIMEOUT, count=2)

    # Broker down: the transitions still commit, quickly, and nothing is published.
    private_broker.kill()
    for profile in profiles[2:]:
        grant, seconds = send_request(profile)
        grant.refresh_from_db()
        assert grant.state == AccessGrant.State.AWAITING_PROVIDER
        assert seconds < 10, f"a transition waited {seconds:.1f}s for the broker"
    expected = set(due_emails())
    assert len(expected) == 8
    scheduled = Notification.objects.filter(
        message_id__in=expected - before, state=Notification.State.SCHEDULED
    )
    assert scheduled.count() == 6
    smtp_sink.assert_no_more_than(2, within=1.0)

    # Broker back, empty (no persistence: whatever was queued is gone): the sweep delivers.
    private_broker.start()
    sweep_until_delivered(smtp_sink, expected, timeout=DELIVERY_TIMEOUT)
    smtp_sink.assert_no_more_than(len(expected), within=GRACE_PERIOD)
    assert_each_exactly_once(smtp_sink, expected)
    assert_all_sent(expected)


# --- 3. the worker is SIGKILLed in the middle of a batch --------------------------------

KILL_BATCH = 300
CLAIM_TIMEOUT = 3  # seconds: how soon a dead worker's claims are taken back


@pytest.mark.worker
def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing(
    celery_workers, smtp_sink, publish_to_broker, northwind
):
    # Committed before the worker starts; the on-commit request waits in the queue.
    expected = schedule_due(northwind, KILL_BATCH)
    worker = celery_workers.start(env={"NOTIFICATION_CLAIM_TIMEOUT": str(CLAIM_TIMEOUT)})

    smtp_sink.wait_for(KILL_BATCH // 4, timeout=DELIVERY_TIMEOUT)
    worker.kill()
    time.sleep(0.5)  # the dots written before the kill land; half-written messages never do
    assert len(smtp_sink.messages) < KILL_BATCH, "the batch ended before the kill"
    claimed = Notification.objects.filter(message_id__in=expected, state=Notification.State.SENDING)
    assert claimed.exists(), "the killed worker held no claim"

    worker.restart()
    sweep_until_delivered(smtp_sink, expected, timeout=DELIVERY_TIMEOUT)
    smtp_sink.assert_no_more_than(len(expected), within=GRACE_PERIOD)
    assert_each_exactly_once(smtp_sink, expected)
    assert_all_sent(expected)


# --- 4. two sweeps at once ---------------------------------------------------------------


@pytest.mark.worker
def test_two_workers_sweeping_at_once_never_send_twice(
    celery_workers, smtp_sink, publish_to_broker, northwind
):
    # More rows than one claim (500): both workers hold claims and send at the same time.
    count = 1200
    first = celery_workers.start("a")
    second = celery_workers.start("b")
    expected = schedule_due(northwind, count)  # on commit: one deliver_due task
    deliver_due.delay()  # and a second one, so both workers sweep at once
    first.wait_for_log(TASK_SUCCEEDED, timeout=DELIVERY_TIMEOUT)
    second.wait_for_log(TASK_SUCCEEDED, timeout=DELIVERY_TIMEOUT)

    smtp_sink.wait_for(count, timeout=DELIVERY_TIMEOUT)
    smtp_sink.assert_no_more_than(count, within=GRACE_PERIOD)
    assert_each_exactly_once(smtp_sink, expected)
    assert_all_sent(expected)
    both = (sent_by(first), sent_by(second))
    assert sum(both) == count
    assert min(both) > 0, f"one worker did all the work: {both}"


def test_two_sweeps_in_threads_claim_disjoint_rows(smtp_sink, northwind, settings):
    """The same race without Celery: two sweeps on two database connections, small batches
    so that their claims interleave."""
    settings.MAILERS = {
        "default": {
            "BACKEND": "notifications.smtp.EmailBackend",
            "OPTIONS": {"host": smtp_sink.host, "port": smtp_sink.port, "timeout": 10},
        }
    }
    count = 400
    expected = schedule_due(northwind, count, request=False)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def sweep():
        try:
            barrier.wait(timeout=10)
            results.append(delivery.deliver_due(batch_size=20, max_batches=100))
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DELIVERY_TIMEOUT)
    assert not errors, errors
    assert len(results) == 2
    assert sum(result["sent"] for result in results) == count
    assert all(result["sent"] > 0 for result in results), results  # both really swept
    smtp_sink.wait_for(count, timeout=5)
    smtp_sink.assert_no_more_than(count, within=0.5)
    assert_each_exactly_once(smtp_sink, expected)
    assert_all_sent(expected)


# --- 5. the SMTP connection or the database fails inside the two-phase send -------------


@pytest.fixture
def mail_to_sink(settings, smtp_sink):
    """This process sends through the two-phase SMTP backend to the sink."""
    settings.MAILERS = {
        "default": {
            "BACKEND": "notifications.smtp.EmailBackend",
            "OPTIONS": {"host": smtp_sink.host, "port": smtp_sink.port, "timeout": 2},
        }
    }


def test_a_final_dot_that_cannot_be_written_is_retried_not_lost(
    smtp_sink, mail_to_sink, northwind, monkeypatch
):
    """The connection breaks between the commit of `sent` and the dot (the server restarted,
    a network reset): that message is taken back for a retry, the others of its chunk still
    get their dots."""
    from notifications.smtp import EmailBackend

    expected = schedule_due(northwind, delivery.LANES, request=False)
    finish = EmailBackend.finish
    broken = []

    def finish_or_break(self):
        if not broken:
            broken.append(self)
            raise ConnectionResetError("connection reset before the final dot")
        finish(self)

    monkeypatch.setattr(EmailBackend, "finish", finish_or_break)
    assert delivery.deliver_due() == {"sent": len(expected) - 1, "retry": 1, "skipped": 0}
    smtp_sink.wait_for(len(expected) - 1, timeout=5)
    smtp_sink.assert_no_more_than(len(expected) - 1, within=0.5)
    [retried] = Notification.objects.filter(
        message_id__in=expected, state=Notification.State.SCHEDULED
    )
    assert retried.due_at > timezone.now()  # backoff
    assert "final dot" in retried.last_error

    # When the retry is due, the sweep delivers it: every message once.
    Notification.objects.filter(pk=retried.pk).update(due_at=timezone.now())
    assert delivery.deliver_due()["sent"] == 1
    smtp_sink.wait_for(len(expected), timeout=5)
    smtp_sink.assert_no_more_than(len(expected), within=0.5)
    assert_each_exactly_once(smtp_sink, expected)
    assert_all_sent(expected)


def test_a_failed_commit_delivers_nothing_and_the_claim_comes_back(
    smtp_sink, mail_to_sink, northwind, monkeypatch, settings
):
    """The database fails while recording `sent`: no message may complete (the prepared
    transactions are dropped at once, not closed with a QUIT that would wait inside DATA),
    and the claimed rows are delivered once after the claim timeout."""
    from django.db import OperationalError

    expected = schedule_due(northwind, delivery.LANES, request=False)

    def commit_fails(token, ids, then=None, held=()):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(delivery, "_commit_sent", commit_fails)
    started = time.monotonic()
    with pytest.raises(OperationalError):
        delivery.deliver_due()
    assert time.monotonic() - started < 1.5, "the prepared SMTP transactions were not dropped"
    smtp_sink.assert_no_more_than(0, within=0.5)
    claimed = Notification.objects.filter(message_id__in=expected)
    assert set(claimed.values_list("state", flat=True)) == {Notification.State.SENDING}

    monkeypatch.undo()
    settings.NOTIFICATION_CLAIM_TIMEOUT = 0  # the claim is stale at once
    assert delivery.deliver_due()["sent"] == len(expected)
    smtp_sink.wait_for(len(expected), timeout=5)
    smtp_sink.assert_no_more_than(len(expected), within=0.5)
    assert_each_exactly_once(smtp_sink, expected)
    assert_all_sent(expected)


def _tcp_pair():
    """A connected pair of TCP sockets on the loopback (the writer, the reader)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        writer = socket.create_connection(server.getsockname())
        reader, _ = server.accept()
    reader.settimeout(2)
    return writer, reader


def test_the_commit_and_the_dots_are_held_back_until_both_are_written():
    """Inside `_held_back` nothing reaches the database or the SMTP server, so writing the
    COMMIT wakes nobody who could take the CPU before the dots are written."""
    database, database_peer = _tcp_pair()
    smtp, smtp_peer = _tcp_pair()
    with database, database_peer, smtp, smtp_peer:
        with delivery._held_back(database.fileno(), [smtp]):
            database.sendall(b"COMMIT")
            smtp.sendall(b".\r\n")
            for peer in (database_peer, smtp_peer):
                ready, _, _ = select.select([peer], [], [], 0.05)
                assert ready == [], "a held-back write went out before the block ended"
        assert database_peer.recv(16) == b"COMMIT"
        assert smtp_peer.recv(16) == b".\r\n"
        # The database socket is libpq's: the block closed its duplicate, not the connection.
        database.sendall(b"still open")
        assert database_peer.recv(16) == b"still open"


def test_held_back_writes_are_sent_by_a_process_killed_before_it_lets_them_go():
    """A worker SIGKILLed right after writing the COMMIT and the dots, still inside the block:
    the kernel sends both when it closes the dead process's sockets. (What `_held_back`
    relies on: once both writes are made, a kill loses neither.)"""
    database, database_peer = _tcp_pair()
    smtp, smtp_peer = _tcp_pair()
    pid = os.fork()
    if pid == 0:  # the worker
        with delivery._held_back(database.fileno(), [smtp]):
            database.sendall(b"COMMIT")
            smtp.sendall(b".\r\n")
            os.kill(os.getpid(), signal.SIGKILL)
    database.close()
    smtp.close()
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGKILL
    with database_peer, smtp_peer:
        assert database_peer.recv(16) == b"COMMIT"
        assert smtp_peer.recv(16) == b".\r\n"
