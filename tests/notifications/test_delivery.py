"""Delivery: claim, send outside the transaction, record once; retries; opt-outs; the
two-phase SMTP path against a real (local) SMTP server."""

import contextlib
import signal
import smtplib
import socket
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from notifications import delivery
from notifications.models import Notification, Preference
from notifications.outbox import Message, schedule
from portal.models import Role
from tests.conftest import skip_or_fail
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def message(firm, *, to="doc@clinic.test", step="now", due=None, essential=True, recipient=None):
    return Message(
        firm=firm,
        kind="test.reminder",
        subject_type="thing",
        subject_id="t-1",
        step=step,
        due_at=due or timezone.now(),
        template="notification",
        to_email=to,
        recipient=recipient,
        essential=essential,
        context={
            "subject": f"Reminder {step}",
            "headline": "Reminder",
            "lines": ["Please act."],
            "name": "Doc",
        },
    )


def email_rows(**lookup):
    return Notification.objects.filter(channel="email", **lookup)


def test_due_messages_are_sent_once_and_future_ones_wait(northwind):
    schedule(
        [
            message(northwind, step="a"),
            message(northwind, step="b", due=timezone.now() + timedelta(days=3)),
        ]
    )
    assert delivery.deliver_due()["sent"] == 1
    assert delivery.deliver_due()["sent"] == 0
    assert len(mail.outbox) == 1
    sent = email_rows(step="a").get()
    assert sent.state == "sent"
    assert sent.sent_at is not None
    assert email_rows(step="b").get().state == "scheduled"


def test_email_carries_text_html_firm_name_link_and_a_stable_message_id(northwind):
    northwind.contact_email = "help@northwind.test"
    northwind.save()
    schedule([message(northwind)])
    delivery.deliver_due()
    email = mail.outbox[0]
    row = email_rows().get()
    assert email.extra_headers["Message-ID"] == row.message_id
    assert "Northwind Credentialing" in email.from_email
    assert email.alternatives[0].mimetype == "text/html"
    assert "http://127.0.0.1:8000/dashboard/" in email.body
    assert "help@northwind.test" in email.body
    # The same key always yields the same Message-ID.
    from notifications.outbox import message_id_for

    assert message_id_for(row.idempotency_key) == row.message_id


def test_scheduling_the_same_message_twice_keeps_one_row(northwind):
    schedule([message(northwind)])
    schedule([message(northwind)])
    assert email_rows().count() == 1


def test_opted_out_provider_still_gets_essential_reminders(northwind):
    provider = MembershipFactory(firm=northwind, role=Role.CLIENT, user__totp=False).user
    Preference.objects.create(user=provider, nonessential_email=False)
    schedule(
        [
            message(northwind, step="deadline", recipient=provider, to=provider.email),
            message(northwind, step="news", recipient=provider, to=provider.email, essential=False),
        ]
    )
    delivery.deliver_due()
    assert [m.subject for m in mail.outbox] == ["Reminder deadline"]
    assert email_rows(step="news").get().state == "cancelled"


def test_failures_retry_with_backoff_then_fail_and_alert_admins(
    northwind, northwind_admin, monkeypatch
):
    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):  # this recipient, for now (a 4xx): each try counts
        raise smtplib.SMTPRecipientsRefused({"doc@clinic.test": (450, b"SMTP mailbox busy")})

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    schedule([message(northwind)])
    row = email_rows().get()
    now = timezone.now()
    for attempt in range(1, delivery.MAX_ATTEMPTS + 1):
        with time_machine.travel(now, tick=False):
            delivery.deliver_due()
        row.refresh_from_db()
        assert row.attempts == attempt
        if attempt < delivery.MAX_ATTEMPTS:
            assert row.state == "scheduled"
            delay = (row.due_at - now).total_seconds()
            base = delivery.BASE_BACKOFF_SECONDS * 2 ** (attempt - 1)
            assert 0.5 * base <= delay <= 1.5 * base  # exponential, with jitter
            assert "SMTP mailbox busy" in row.last_error
            now = row.due_at
    assert row.state == "failed"
    alert = Notification.objects.get(channel="in_app", kind="delivery.failed")
    assert alert.recipient == northwind_admin


def test_a_claim_left_by_a_dead_worker_is_released(northwind):
    schedule([message(northwind)])
    token, ids = delivery.claim_batch(10)
    assert email_rows(state="sending").count() == 1
    assert delivery.release_stale_claims() == 0  # still fresh
    with time_machine.travel(timezone.now() + delivery.claim_timeout() + timedelta(seconds=1)):
        assert delivery.release_stale_claims() == 1
        assert delivery.deliver_due()["sent"] == 1
    # The dead worker comes back and tries to record its send: it no longer owns the row.
    assert delivery._commit_sent(token, ids) == set()
    assert len(mail.outbox) == 1


def test_two_claims_never_share_a_row(northwind):
    schedule([message(northwind, step=str(i)) for i in range(10)])
    _, first = delivery.claim_batch(6)
    _, second = delivery.claim_batch(6)
    assert len(first) == 6
    assert len(second) == 4
    assert not set(first) & set(second)


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_message_once(northwind, monkeypatch):
    from notifications import outbox

    monkeypatch.setattr(outbox, "request_delivery", lambda: None)  # only the two sweeps send
    schedule([message(northwind, step=str(i)) for i in range(60)])
    barrier = threading.Barrier(2)
    results = []

    def sweep():
        try:
            barrier.wait(timeout=10)
            results.append(delivery.deliver_due(batch_size=7)["sent"])
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(results) == 60
    ids = [m.extra_headers["Message-ID"] for m in mail.outbox]
    assert len(ids) == len(set(ids)) == 60


# --- the two-phase SMTP path ---------------------------------------------------------


@pytest.fixture
def smtp_mailer(smtp_sink):
    config = {
        "default": {
            "BACKEND": "notifications.smtp.EmailBackend",
            "OPTIONS": {"host": smtp_sink.host, "port": smtp_sink.port, "timeout": 10},
        }
    }
    with override_settings(MAILERS=config):
        yield smtp_sink


def test_two_phase_smtp_delivers_each_message_once(northwind, smtp_mailer):
    schedule([message(northwind, step=str(i)) for i in range(20)])
    assert delivery.deliver_due()["sent"] == 20
    received = smtp_mailer.wait_for(20, timeout=10)
    ids = [m["Message-ID"] for m in received]
    assert len(set(ids)) == 20
    assert set(ids) == set(email_rows().values_list("message_id", flat=True))
    smtp_mailer.assert_no_more_than(20, within=0.5)


def test_a_message_whose_claim_was_lost_is_never_delivered(northwind, smtp_mailer, monkeypatch):
    """Prepared on the wire, but another worker took the row: the half-sent transaction is
    dropped (no final dot), so the message is delivered only by the new owner."""
    schedule([message(northwind)])
    token, ids = delivery.claim_batch(10)
    real_commit = delivery._commit_sent

    def reclaimed_meanwhile(token_, ids_, then=None, held=()):
        Notification.objects.filter(pk__in=ids_).update(claim_token=None, state="scheduled")
        return real_commit(token_, ids_, then, held)

    monkeypatch.setattr(delivery, "_commit_sent", reclaimed_meanwhile)
    counts = delivery.send_claimed(token, ids)
    assert counts["sent"] == 0
    smtp_mailer.assert_no_more_than(0, within=0.5)
    monkeypatch.setattr(delivery, "_commit_sent", real_commit)
    assert delivery.deliver_due()["sent"] == 1
    assert len(smtp_mailer.wait_for(1, timeout=5)) == 1


def test_smtp_refusal_is_retried_not_lost(northwind, smtp_mailer, monkeypatch):
    from notifications import smtp

    calls = {"n": 0}
    real_steps = smtp.EmailBackend.prepare_steps

    def flaky(self, email_message):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionResetError("connection reset by peer")
        yield from real_steps(self, email_message)

    monkeypatch.setattr(smtp.EmailBackend, "prepare_steps", flaky)
    schedule([message(northwind)])
    counts = delivery.deliver_due()
    assert counts == {"sent": 0, "retry": 1, "skipped": 0}
    row = email_rows().get()
    with time_machine.travel(row.due_at + timedelta(seconds=1)):
        assert delivery.deliver_due()["sent"] == 1
    assert len(smtp_mailer.wait_for(1, timeout=5)) == 1


# --- PostgreSQL: the final dots go out while the COMMIT of `sent` is in flight ---------


@pytest.fixture
def postgresql(monkeypatch):
    """PostgreSQL, and no delivery on commit: the test drives the claim itself."""
    from notifications import outbox

    if connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL (DATABASE_URL)")
    monkeypatch.setattr(outbox, "request_delivery", lambda: None)


@pytest.mark.django_db(transaction=True)
def test_the_dots_are_written_while_the_commit_is_on_the_wire(northwind, postgresql):
    from psycopg import pq

    schedule([message(northwind, step=str(i)) for i in range(3)])
    token, ids = delivery.claim_batch(10)
    seen = {}

    def write_dots(owned):
        pgconn = connection.connection.pgconn
        seen["owned"] = owned
        seen["status"] = pgconn.transaction_status
        seen["busy"] = pgconn.is_busy()

    assert delivery._commit_sent(token, ids, then=write_dots) == set(ids)
    assert seen == {"owned": set(ids), "status": pq.TransactionStatus.ACTIVE, "busy": True}
    assert email_rows(state="sent").count() == 3
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.django_db(transaction=True)
def test_a_failed_commit_after_the_dots_records_sent_again(
    northwind, postgresql, smtp_mailer, monkeypatch
):
    """The dots were written, then the COMMIT's reply says it failed: the rows must still
    end up `sent` (else the claim timeout would send them a second time)."""
    real_await = delivery._await_command

    def commit_failed(pgconn, tag):
        real_await(pgconn, tag)
        return "simulated: server closed the connection"

    monkeypatch.setattr(delivery, "_await_command", commit_failed)
    schedule([message(northwind, step=str(i)) for i in range(5)])
    token, ids = delivery.claim_batch(10)
    counts = delivery.send_claimed(token, ids)
    assert counts["sent"] == 5
    assert email_rows(state="sent").count() == 5
    with time_machine.travel(timezone.now() + delivery.claim_timeout() + timedelta(seconds=1)):
        assert delivery.release_stale_claims() == 0
    assert len(smtp_mailer.wait_for(5, timeout=5)) == 5
    smtp_mailer.assert_no_more_than(5, within=0.5)


@pytest.mark.django_db(transaction=True)
def test_the_pipelined_commit_leaves_rows_another_claim_took(northwind, postgresql):
    schedule([message(northwind, step=str(i)) for i in range(4)])
    token, ids = delivery.claim_batch(10)
    Notification.objects.filter(pk=ids[0]).update(claim_token=None, state="scheduled")
    written = []
    owned = delivery._commit_sent(token, ids, then=written.append)
    assert owned == set(ids[1:]) == written[0]
    assert email_rows(state="scheduled").count() == 1


# --- issue 12, finding 4: the soft time limit ends a delivery cleanly ------------------


def test_soft_time_limit_is_not_swallowed_and_releases_the_claims(
    northwind, smtp_mailer, monkeypatch
):
    """Celery raises SoftTimeLimitExceeded wherever the task is; the per-lane `except
    Exception` used to count it as an SMTP failure and carry on to the hard kill."""
    from celery.exceptions import SoftTimeLimitExceeded

    from notifications import smtp

    def out_of_time(self, email_message):
        raise SoftTimeLimitExceeded()
        yield  # pragma: no cover  (a generator, like the real one)

    monkeypatch.setattr(smtp.EmailBackend, "prepare_steps", out_of_time)
    schedule([message(northwind, step=str(i)) for i in range(3)])
    with pytest.raises(SoftTimeLimitExceeded):
        delivery.deliver_due()
    rows = list(email_rows())
    assert {row.state for row in rows} == {Notification.State.SCHEDULED}
    assert {row.claim_token for row in rows} == {None}
    assert {row.last_error for row in rows} == {""}
    smtp_mailer.assert_no_more_than(0, within=0.3)


# --- issue 12, finding 5: attempts count SMTP tries, not reclaims ----------------------


def test_reclaims_after_a_dead_worker_do_not_spend_attempts(northwind):
    schedule([message(northwind)])
    later = timezone.now()
    for _ in range(delivery.MAX_ATTEMPTS + 1):
        with time_machine.travel(later, tick=False):
            delivery.claim_batch(10)  # the worker dies before any SMTP try
        later += delivery.claim_timeout() + timedelta(seconds=1)
        with time_machine.travel(later, tick=False):
            assert delivery.release_stale_claims() == 1
    row = email_rows().get()
    assert (row.state, row.attempts) == ("scheduled", 0)
    with time_machine.travel(later, tick=False):
        assert delivery.deliver_due()["sent"] == 1
    assert len(mail.outbox) == 1


# --- issue 12, finding 8: a permanent refusal is not retried --------------------------


def test_a_permanent_refusal_of_the_recipient_fails_the_message_at_once(
    northwind, northwind_admin, smtp_mailer, monkeypatch
):
    import smtplib

    from notifications import smtp

    def no_such_user(self, email_message):
        raise smtplib.SMTPRecipientsRefused({"doc@clinic.test": (550, b"5.1.1 no such user")})
        yield  # pragma: no cover

    monkeypatch.setattr(smtp.EmailBackend, "prepare_steps", no_such_user)
    schedule([message(northwind)])
    delivery.deliver_due()
    row = email_rows().get()
    assert (row.state, row.attempts) == ("failed", 1)
    assert "no such user" in row.last_error
    assert Notification.objects.get(channel="in_app", kind="delivery.failed").recipient == (
        northwind_admin
    )


def test_a_long_smtp_outage_spends_no_attempts_and_the_mail_goes_out_when_it_returns(
    northwind, northwind_admin, monkeypatch
):
    """Issue 12, finding 1: refused connections for 10 hours used to fail every message for
    good after 6 tries; now they wait, admins hear once, and all go out afterwards."""
    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):
        raise ConnectionRefusedError("SMTP server down")

    # The 10 hours stay within one day (the outage alert is one per admin and day): run at
    # 14:00 UTC, the test used to cross midnight and find two alerts.
    now = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0)
    with time_machine.travel(now, tick=False):
        schedule([message(northwind, step=f"s{n}") for n in range(3)])
    with monkeypatch.context() as down:
        down.setattr(EmailBackend, "send_messages", refuse)
        for minute in range(0, 600, 30):
            with time_machine.travel(now + timedelta(minutes=minute), tick=False):
                delivery.deliver_due()
    rows = email_rows()
    assert set(rows.values_list("state", flat=True)) == {"scheduled"}
    assert set(rows.values_list("attempts", flat=True)) == {0}
    alerts = Notification.objects.filter(channel="in_app", recipient=northwind_admin)
    assert list(alerts.values_list("kind", flat=True)) == ["delivery.outage"]  # one, not three
    with time_machine.travel(now + timedelta(minutes=610), tick=False):
        assert delivery.deliver_due()["sent"] == 3
    assert len(mail.outbox) == 3
    # ... and one more when it ends: mail flows again.
    assert list(alerts.order_by("id").values_list("kind", flat=True)) == [
        "delivery.outage",
        "delivery.outage_ended",
    ]


def test_a_message_older_than_the_age_limit_is_given_up_during_an_outage(
    northwind, northwind_admin, monkeypatch
):
    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):
        raise TimeoutError("timed out")

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    schedule([message(northwind)])
    # The firm's own limit (a setting it sees): 72 hours unless it says otherwise.
    assert delivery.max_age(northwind) == timedelta(hours=72)
    northwind.notification_max_age_hours = 24
    northwind.save()
    with time_machine.travel(timezone.now() + timedelta(hours=23)):
        delivery.deliver_due()
    assert email_rows().get().state == "scheduled"
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        delivery.deliver_due()
    row = email_rows().get()
    assert row.state == "failed"
    assert "not delivered within" in row.last_error
    assert Notification.objects.filter(kind="delivery.failed", recipient=northwind_admin).exists()


# --- issue 12, finding 4: a hung mail server costs one connect budget, not N timeouts ---


class HungSMTPServer:
    """Accepts TCP connections and never says a word (no 220 greeting): what a wedged mail
    server, or one over its connection limit, looks like to a client."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed at teardown
                return
            self.accepted.append(conn)

    def open_connections(self) -> int:
        """How many accepted connections the client has not closed yet."""
        still_open = 0
        for conn in self.accepted:
            conn.setblocking(False)
            try:
                still_open += conn.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                still_open += 1  # nothing to read, not closed
            except OSError:
                pass  # reset by the client
        return still_open

    def close(self):
        # shutdown() wakes a thread blocked on the socket; close() alone would not (Linux).
        for sock in (self.listener, *self.accepted):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(timeout=5)


class OverloadedSMTPServer(HungSMTPServer):
    """Serves its first `serving` connections (relayed to a real SMTP server) and hangs the
    rest: a server at its connection limit, as many are under load."""

    def __init__(self, upstream, serving: int):
        self.upstream, self.serving = upstream, serving
        self.relays: list[socket.socket] = []
        super().__init__()

    def close(self):
        super().close()
        for relay in self.relays:
            with contextlib.suppress(OSError):
                relay.shutdown(socket.SHUT_RDWR)
            relay.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)
            if len(self.accepted) <= self.serving:
                relay = socket.create_connection((self.upstream.host, self.upstream.port))
                self.relays.append(relay)
                for source, target in ((conn, relay), (relay, conn)):
                    threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)


def opening_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "smtp-lane-open" and t.is_alive()]


@pytest.fixture
def hung_smtp(settings):
    """The mail server hangs; each lane would wait 30 s for its greeting, the budget is 1 s."""
    server = HungSMTPServer()
    settings.MAILERS = {
        "default": {
            "BACKEND": "notifications.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": server.port, "timeout": 30},
        }
    }
    settings.NOTIFICATION_SMTP_CONNECT_BUDGET = 1
    yield server
    server.close()


def test_a_hung_smtp_server_costs_the_task_one_connect_budget_and_no_attempt(northwind, hung_smtp):
    """Lanes used to be opened one after another, each waiting for its greeting for the full
    SMTP timeout (8 lanes x 20 s per chunk of a batch, until the hard time limit). Now they
    are opened at once within one budget for all of them, and a server that greets none of
    them spends no attempt: the messages wait for it."""
    schedule([message(northwind, step=f"s{n}") for n in range(20)])
    started = time.monotonic()
    counts = delivery.deliver_due()
    elapsed = time.monotonic() - started
    # Generous against the 1 s budget; a single lane's greeting timeout is 30 s.
    assert elapsed < 1 + 5, f"took {elapsed:.1f} s"
    assert counts["sent"] == 0
    assert len(hung_smtp.accepted) <= delivery.LANES  # each lane tried once, not per chunk
    rows = email_rows()
    assert set(rows.values_list("state", flat=True)) == {"scheduled"}
    assert set(rows.values_list("attempts", flat=True)) == {0}
    assert set(rows.values_list("claim_token", flat=True)) == {None}
    assert all("budget" in error for error in rows.values_list("last_error", flat=True))
    assert rows.filter(due_at__lte=timezone.now()).count() == 0  # they wait for the server
    # The lanes that never got their greeting are closed, not left hanging on the server.
    # ... by their threads, which end on their own (their socket timeout is twice the budget).
    deadline = time.monotonic() + 10
    while (hung_smtp.open_connections() or opening_threads()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hung_smtp.open_connections() == 0
    assert opening_threads() == []


def test_a_server_that_greets_only_some_lanes_gets_the_batch_on_those(
    northwind, smtp_sink, settings
):
    """At its connection limit, a server leaves the extra connections hanging: the lanes it
    greeted carry the whole batch, and the others are left out after one budget."""
    server = OverloadedSMTPServer(smtp_sink, serving=3)
    settings.MAILERS = {
        "default": {
            "BACKEND": "notifications.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": server.port, "timeout": 30},
        }
    }
    settings.NOTIFICATION_SMTP_CONNECT_BUDGET = 1
    try:
        schedule([message(northwind, step=f"s{n}") for n in range(20)])
        started = time.monotonic()
        assert delivery.deliver_due()["sent"] == 20
        assert time.monotonic() - started < 1 + 5
        assert len(server.accepted) == delivery.LANES  # the 5 hung lanes were not retried
        assert len(smtp_sink.wait_for(20, timeout=10)) == 20
        assert set(email_rows().values_list("attempts", flat=True)) == {0}
    finally:
        server.close()


def test_a_hung_smtp_server_ends_the_run_after_its_first_batch(northwind, hung_smtp):
    """The server is down: further batches would each cost another budget. The run stops,
    leaving the other due rows untouched (the next sweep tries again)."""
    schedule([message(northwind, step=f"s{n}") for n in range(20)])
    delivery.deliver_due(batch_size=5)
    assert len(hung_smtp.accepted) <= 5
    tried = email_rows().exclude(last_error="")
    assert tried.count() == 5
    assert set(email_rows().values_list("attempts", flat=True)) == {0}
    assert email_rows(last_error="", state="scheduled").count() == 15


def test_the_soft_time_limit_ends_a_delivery_waiting_for_a_hung_server(
    northwind, hung_smtp, settings
):
    """SoftTimeLimitExceeded arrives as a signal while the lanes are opening: the task must
    end at once (not wait for the opening threads), with its claims given back."""
    from celery.exceptions import SoftTimeLimitExceeded

    settings.NOTIFICATION_SMTP_CONNECT_BUDGET = 30

    def out_of_time(signum, frame):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, out_of_time)
    schedule([message(northwind, step=f"s{n}") for n in range(3)])
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            delivery.deliver_due()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 10  # not the 30 s budget, nor a 30 s greeting timeout
    rows = email_rows()
    assert set(rows.values_list("state", flat=True)) == {"scheduled"}
    assert set(rows.values_list("claim_token", flat=True)) == {None}
    assert set(rows.values_list("attempts", flat=True)) == {0}
    assert set(rows.values_list("last_error", flat=True)) == {""}
