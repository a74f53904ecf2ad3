"""`make chaos`: deliver thousands of due emails through real workers while breaking things.

On a scratch database (PostgreSQL when DATABASE_URL says so: a private server started from
the installed binaries, so that it can be stopped, or DATABASE_URL's own server with
`--postgres shared`; otherwise a temporary SQLite file), with a private redis-server as the
broker and an SMTP sink (aiosmtpd) in this process:

1. throughput, no faults: N due emails, one worker process, timed to the last one received;
2. kills and broker outages: several workers deliver at least N reminders and invitations
   committed in waves (each wave one transaction, delivery requested on commit, as a
   workflow transition does), while the busiest worker is SIGKILLed again and again (and
   restarted), some kills aimed at a worker in the middle of sending an invitation, and the
   broker is killed and restarted (empty: no persistence) twice; a sweep runs every few
   seconds, as beat does every minute;
3. the SMTP server refuses connections, then answers 421, for longer than a message's six
   attempts would last (the delivery clock is shrunk by settings: retries after 0.2 s, 0.4 s
   ...), then comes back;
4. the SMTP server hangs (accepts connections, never greets), then comes back;
5. PostgreSQL crashes (an immediate shutdown) while workers hold claimed rows, and is
   started again (private server only; skipped, and said so, otherwise).

What the sink received is counted by Message-ID against the due rows of phases 2 to 5: on
stdout, one throughput line and one summary line, `reminders: N due, N sent, 0 lost, 0
duplicated` (invitations are counted among them). Exits 1 if any message was lost or
duplicated, 2 if the faults could not be injected as planned, and stops by itself (every
wait has a deadline). Progress, and a line per phase, go to stderr.

    make chaos                             # or: .venv/bin/python devtools/chaos.py --help
    CHAOS_ARGS="--reminders 5000" make chaos
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

import psutil  # noqa: E402
from aiosmtpd.smtp import SMTP  # noqa: E402

from devtools.postgres_server import PrivatePostgres  # noqa: E402
from tests import smtp_sink  # noqa: E402  (no Django needed)
from tests.redis_server import RedisServer  # noqa: E402

QUEUE = "celery"  # the default queue: the broker is ours alone
RECEIVED = re.compile(r"Task notifications\.tasks\.deliver_due\[[0-9a-f-]+\] received")
FINISHED = re.compile(
    r"Task notifications\.tasks\.deliver_due\[[0-9a-f-]+\] (succeeded|failed|raised)"
)
REMINDER = "chaos.reminder"
INVITATION = "portal.invitation"  # notifications.invitations.KIND
INVITEE = "invitee-"  # the addresses of the invitations
MAX_ATTEMPTS = 6  # notifications.delivery.MAX_ATTEMPTS


def say(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


# --- the SMTP sink: counting what a vanishing client leaves behind, and its faults --------


class _CountingSMTP(SMTP):
    """Counts end-of-data markers (CRLF.CRLF) received on a connection that then closed
    before the message was handled: a client killed right after writing its final dot.
    aiosmtpd drops such a message (it cancels the session on EOF); a queueing MTA that has
    read the dot keeps it. Either way the sender can't know: the dot was never answered."""

    def __init__(self, *args, sink, **kwargs):
        super().__init__(*args, **kwargs)
        self._sink = sink
        self._tail = b""
        self.ends_seen = 0
        self.ends_handled = 0

    def data_received(self, data: bytes) -> None:
        buffer = self._tail + data
        self.ends_seen += buffer.count(b"\r\n.\r\n")
        self._tail = buffer[-4:]
        super().data_received(data)

    def _count_dropped(self) -> None:
        if self.ends_seen > self.ends_handled:
            self._sink.dropped_after_dot += self.ends_seen - self.ends_handled
            self.ends_handled = self.ends_seen

    def eof_received(self):
        self._count_dropped()
        return super().eof_received()

    def connection_lost(self, error) -> None:
        self._count_dropped()
        super().connection_lost(error)


class _Hung(asyncio.Protocol):
    """A server that accepts the connection and never says a word."""

    def __init__(self, sink):
        self._sink = sink

    def connection_made(self, transport) -> None:
        self._sink._held.append(transport)

    def data_received(self, data: bytes) -> None:
        pass


class _Unavailable(asyncio.Protocol):
    """A server that greets with 421 (service not available) and closes."""

    def connection_made(self, transport) -> None:
        transport.write(b"421 chaos.test Service not available, closing transmission channel\r\n")
        transport.close()


class _CountingHandler(smtp_sink._Handler):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        sink = self._sink
        if sink.hold_invitation_rcpt and address.startswith(INVITEE):
            # An invitation in the middle of its SMTP transaction: tell the fault loop which
            # connection it is on, and keep the sender waiting for our answer meanwhile.
            sink.invitation_rcpts.put((session.peer[1], address))
            await asyncio.sleep(sink.hold_invitation_rcpt)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        server.ends_handled += 1
        return await super().handle_DATA(server, session, envelope)


class _CountingController(smtp_sink._EphemeralPortController):
    def __init__(self, *args, sink, **kwargs):
        super().__init__(*args, **kwargs)
        self._sink = sink

    def factory(self):
        if self._sink.mode == "hung":
            return _Hung(self._sink)
        if self._sink.mode == "421":
            return _Unavailable()
        return _CountingSMTP(self.handler, sink=self._sink, **self.SMTP_kwargs)


class ChaosSink(smtp_sink.SMTPSink):
    def __init__(self):
        super().__init__()
        self.dropped_after_dot = 0
        self.mode = "healthy"  # or "hung", "421": how new connections are answered
        self._held = []
        self.hold_invitation_rcpt = 0.0
        self.invitation_rcpts: queue.SimpleQueue = queue.SimpleQueue()
        self._ids: list[str] = []  # kept as messages arrive: thousands are asked for often
        self._controller = _CountingController(
            _CountingHandler(self), hostname=smtp_sink.HOST, port=0, sink=self
        )

    def _record(self, message, envelope) -> None:
        with self._condition:
            self._ids.append(str(message["Message-ID"]))
        super()._record(message, envelope)

    def message_ids(self) -> list[str]:
        with self._condition:
            return list(self._ids)

    def clear(self) -> None:
        with self._condition:
            self._ids.clear()
        super().clear()

    def _in_loop(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._controller.loop).result(10)

    def refuse(self) -> None:
        """Stop listening: connections are refused (the port is closed)."""

        async def close():
            self._controller.server.close()

        self._in_loop(close())

    def listen(self) -> None:
        """Listen again on the same port."""
        controller = self._controller

        async def create():
            controller.server = await controller.loop.create_server(
                controller._factory_invoker, host=self.host, port=self.port
            )

        self._in_loop(create())

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "healthy":
            held, self._held = self._held, []

            async def release():
                for transport in held:
                    transport.abort()

            self._in_loop(release())

    def stop(self) -> None:
        self.hold_invitation_rcpt = 0.0
        self.set_mode("healthy")
        super().stop()


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=2000, help="due reminders, at least")
    parser.add_argument("--kills", type=int, default=12, help="worker SIGKILLs")
    parser.add_argument(
        "--invitation-kills",
        type=int,
        default=4,
        help="more SIGKILLs, each of a worker in the middle of sending an invitation",
    )
    parser.add_argument("--outages", type=int, default=2, help="broker kills and restarts")
    parser.add_argument("--outage-seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=3, help="worker processes (solo pool)")
    parser.add_argument("--wave", type=int, default=50, help="reminders per transaction")
    parser.add_argument("--invitations", type=int, default=1, help="invitations per wave")
    parser.add_argument("--pace", type=float, default=0.5, help="seconds between waves")
    parser.add_argument("--claim-timeout", type=int, default=5, help="NOTIFICATION_CLAIM_TIMEOUT")
    parser.add_argument("--sweep-every", type=float, default=2.0, help="seconds between sweeps")
    parser.add_argument("--throughput", type=int, default=2000, help="emails in the clean run")
    parser.add_argument(
        "--retry-base",
        type=float,
        default=0.2,
        help="NOTIFICATION_RETRY_BASE_SECONDS: the "
        "first retry's delay (6 attempts last 31 times this)",
    )
    parser.add_argument(
        "--outage-retry", type=float, default=1.0, help="NOTIFICATION_OUTAGE_RETRY_SECONDS"
    )
    parser.add_argument("--smtp-timeout", type=int, default=3, help="EMAIL_TIMEOUT")
    parser.add_argument(
        "--connect-budget", type=float, default=2.0, help="NOTIFICATION_SMTP_CONNECT_BUDGET"
    )
    parser.add_argument(
        "--smtp-down-seconds",
        type=float,
        default=10.0,
        help="the SMTP server refuses connections this long, then answers 421 this long",
    )
    parser.add_argument("--hung-seconds", type=float, default=8.0, help="SMTP server hung")
    parser.add_argument("--db-down-seconds", type=float, default=4.0, help="PostgreSQL stopped")
    parser.add_argument(
        "--postgres",
        choices=["private", "shared"],
        default="private",
        help="with a PostgreSQL DATABASE_URL: a private server (which phase 5 stops), or "
        "DATABASE_URL's own (phase 5 skipped)",
    )
    parser.add_argument("--deadline", type=float, default=480.0, help="seconds for everything")
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args()


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.end


# --- the scratch database ----------------------------------------------------------------


class ScratchDatabase:
    """PostgreSQL when DATABASE_URL says so (a database of its own), else a SQLite file."""

    def __init__(self, configured: str, name: str, workdir: Path):
        parts = urlsplit(configured) if configured else None
        self.postgres = bool(parts) and parts.scheme in ("postgres", "postgresql", "pgsql")
        if self.postgres:
            self.name = name
            self.url = urlunsplit(parts._replace(path=f"/{name}"))
            self._admin_url = urlunsplit(parts._replace(path="/postgres", query=""))
            self.kind = f"PostgreSQL database {name}"
        else:
            self.url = f"sqlite:///{workdir / 'chaos.sqlite3'}"
            self.kind = "SQLite (WAL) temporary file"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        if self.postgres:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.postgres:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# --- the run -----------------------------------------------------------------------------


class Chaos:
    def __init__(self, args, *, sink, redis, workdir: Path, deadline, postgres=None):
        from notifications.models import Notification
        from portal.models import Firm, Membership, Role, User

        self.args = args
        self.sink = sink
        self.redis = redis
        self.workdir = workdir
        self.deadline = deadline
        self.postgres = postgres  # a PrivatePostgres we may stop, or None
        self.Notification = Notification
        self.firm, _ = Firm.objects.get_or_create(
            slug="chaos",
            defaults={"name": "Chaos Credentialing", "contact_email": "help@chaos.test"},
        )
        # Who sends the invitations, and who is told of a mail server outage.
        self.admin, _ = User.objects.get_or_create(email="admin@chaos.test")
        Membership.objects.get_or_create(firm=self.firm, user=self.admin, role=Role.ADMIN)
        self.workers = []
        self.rng = random.Random(args.seed)
        self.stats = Counter()
        self.stop_sweeps = threading.Event()

    # --- building blocks ------------------------------------------------------------------

    def worker(self, name: str, *, claim_timeout: int):
        from tests.worker import CeleryWorkerProcess

        worker = CeleryWorkerProcess(
            queue=QUEUE,
            nodename=f"chaos-{name}@localhost",
            log_path=self.workdir / f"worker-{name}.log",
            env={
                **os.environ,
                "NOTIFICATION_CLAIM_TIMEOUT": str(claim_timeout),
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            },
        )
        self.workers.append(worker)
        worker.start()
        return worker

    def reminders(self, prefix: str, count: int, due_at):
        from notifications.outbox import Message

        return [
            Message(
                firm=self.firm,
                kind="bench.reminder" if prefix == "bench" else REMINDER,
                subject_type="chaos",
                subject_id=f"{prefix}-{number}",
                step="day-3",
                due_at=due_at,
                template="notification",
                to_email=f"provider-{prefix}-{number}@clinic.test",
                context={
                    "subject": "Reminder: your application is waiting for your signature",
                    "headline": "Reminder: your application is waiting for your signature",
                    "lines": ["Please sign by Friday: contractors reject unsigned applications."],
                    "name": f"Provider {number}",
                },
                channels=(self.Notification.Channel.EMAIL,),
            )
            for number in range(count)
        ]

    def commit_wave(self, prefix: str, count: int, *, invitations: int = 0, due=True) -> None:
        """One transaction, as a transition: rows stored, delivery requested on commit. The
        invitations are issued as the team page does (portal.services.invitation_create),
        so their emails reach the outbox through the portal's signal."""
        from django.db import transaction
        from django.utils import timezone

        from notifications.outbox import schedule
        from portal.models import Role
        from portal.services import invitation_create

        now = timezone.now()
        due_at = now - timedelta(seconds=1) if due else now + timedelta(days=1)
        with transaction.atomic():
            schedule(self.reminders(prefix, count, due_at))
            for number in range(invitations):
                invitation_create(
                    firm=self.firm,
                    email=f"{INVITEE}{prefix}-{number}@clinic.test",
                    role=Role.STAFF,
                    invited_by=self.admin,
                )

    def due_rows(self, tag: str | None = None):
        """The email rows of the fault phases (reminders and invitations), or of one: all
        were due when they were committed (a retry moves a row's due time on)."""
        from django.db.models import Q

        rows = self.Notification.objects.filter(channel="email", kind__in=[REMINDER, INVITATION])
        if tag:
            rows = rows.filter(
                Q(kind=REMINDER, subject_id__startswith=f"{tag}-")
                | Q(kind=INVITATION, to_email__startswith=f"{INVITEE}{tag}-")
            )
        return rows

    def due_ids(self, tag: str | None = None) -> set[str]:
        return set(self.due_rows(tag).values_list("message_id", flat=True))

    def bench_ids(self) -> set[str]:
        return set(
            self.Notification.objects.filter(kind="bench.reminder").values_list(
                "message_id", flat=True
            )
        )

    @staticmethod
    def request_sweep() -> bool:
        from notifications.tasks import deliver_due

        try:
            deliver_due.delay()
        except Exception:  # noqa: BLE001  (broker away: the next sweep tries again)
            return False
        return True

    def start_sweeps(self) -> threading.Thread:
        """A sweep every few seconds, as beat does every minute, until the end."""

        def sweeper():
            while not self.stop_sweeps.wait(self.args.sweep_every):
                self.stats["sweeps"] += self.request_sweep()

        thread = threading.Thread(target=sweeper, daemon=True)
        thread.start()
        return thread

    def produce(self, tag: str, *, until, wave: int, tolerate_database_errors=False):
        """Waves of `tag` in a thread, every `pace` seconds, until `until(stats)` says enough.
        With `tolerate_database_errors`, a wave the database refuses (it is down) is
        counted and the next one tried; otherwise the error is kept for the caller."""
        stats = Counter()
        errors: list[BaseException] = []

        def run():
            from django.db import Error, connection

            try:
                while not until(stats) and not self.deadline.passed():
                    broker_up = self.redis.running
                    try:
                        self.commit_wave(
                            f"{tag}-w{stats['waves']}", wave, invitations=self.args.invitations
                        )
                    except Error:
                        if not tolerate_database_errors:
                            raise
                        stats["refused"] += 1
                        connection.close()
                        time.sleep(self.args.pace)
                        continue
                    stats["waves"] += 1
                    stats["produced"] += wave + self.args.invitations
                    stats["unpublished_waves"] += not broker_up
                    time.sleep(self.args.pace)
            except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread, stats, errors

    def wait_received(self, ids: set[str], timeout: float) -> bool:
        """Until every id arrived, or nothing more can arrive: every row has been in a final
        state (sent, failed, cancelled) for a few seconds (the last dots are in flight)."""
        end = time.monotonic() + timeout
        settled_since = None
        while time.monotonic() < end:
            if ids <= set(self.sink.message_ids()):
                return True
            pending = self.Notification.objects.filter(
                message_id__in=ids,
                state__in=[self.Notification.State.SCHEDULED, self.Notification.State.SENDING],
            ).exists()
            if pending:
                settled_since = None
            elif settled_since is None:
                settled_since = time.monotonic()
            elif time.monotonic() - settled_since > 5.0:
                return False
            self.sink._wait_until(lambda _n: ids <= set(self.sink.message_ids()), 1.0)
        return ids <= set(self.sink.message_ids())

    @staticmethod
    def busy(worker) -> bool:
        """Running a deliver_due right now (per its log since it last started)."""
        log = worker.log(current_run=True)
        return worker.running and len(RECEIVED.findall(log)) > len(FINISHED.findall(log))

    @staticmethod
    def ready(worker) -> bool:
        return worker.running and f"{worker.nodename} ready." in worker.log(current_run=True)

    def busy_worker(self, workers, within: float):
        """A worker in the middle of a deliver_due, waiting up to `within` seconds."""
        end = time.monotonic() + within
        while time.monotonic() < end:
            candidates = [w for w in workers if self.busy(w)]
            if candidates:
                return self.rng.choice(candidates)
            time.sleep(0.005)
        return None

    @staticmethod
    def worker_on_port(workers, port: int):
        """The worker whose SMTP connection has this local port."""
        for worker in workers:
            if not worker.running:
                continue
            try:
                connections = psutil.Process(worker.pid).net_connections(kind="tcp")
            except psutil.Error:
                continue
            if any(c.laddr and c.laddr.port == port for c in connections):
                return worker
        return None

    def worker_sending_an_invitation(self, workers, within: float):
        """A worker in the middle of an invitation's SMTP transaction (its RCPT is held
        unanswered by the sink while we find it), and the invitation's address."""
        while True:  # forget invitations seen before
            try:
                self.sink.invitation_rcpts.get_nowait()
            except queue.Empty:
                break
        self.sink.hold_invitation_rcpt = 1.0  # well under EMAIL_TIMEOUT
        try:
            end = time.monotonic() + within
            while time.monotonic() < end:
                try:
                    port, address = self.sink.invitation_rcpts.get(timeout=0.05)
                except queue.Empty:
                    continue
                victim = self.worker_on_port(workers, port)
                if victim is not None:
                    return victim, address
            return None, None
        finally:
            self.sink.hold_invitation_rcpt = 0.0

    # --- 1. throughput without faults -----------------------------------------------------

    def throughput(self) -> None:
        count = self.args.throughput
        worker = self.worker("bench", claim_timeout=600)
        worker.wait_until_ready(60)
        from django.utils import timezone

        self.commit_wave("bench", count, due=False)  # stored, not due: nothing runs yet
        self.Notification.objects.filter(kind="bench.reminder").update(
            due_at=timezone.now() - timedelta(seconds=1)
        )
        ids = self.bench_ids()
        started = time.monotonic()
        self.request_sweep()
        self.sink.wait_for(count, timeout=min(120.0, self.deadline.left()))
        elapsed = time.monotonic() - started
        worker.stop()
        received = Counter(self.sink.message_ids())
        if set(received) != ids or max(received.values()) > 1:
            say(f"throughput run: {len(ids)} due, {len(received)} distinct received (!)")
        print(
            f"throughput: {count / elapsed:.0f} emails/s per worker ({count} emails in "
            f"{elapsed:.1f}s, 1 worker process --pool=solo, local aiosmtpd sink in the same "
            f"host, {self.db_kind}, no faults)",
            flush=True,
        )
        self.sink.clear()

    # --- 2. kills and broker outages ------------------------------------------------------

    def kills_and_broker_outages(self, workers) -> dict:
        args = self.args
        rng = self.rng
        faults_done = threading.Event()
        producer, produced, errors = self.produce(
            "chaos",
            until=lambda stats: stats["produced"] >= args.reminders and faults_done.is_set(),
            wave=args.wave,
        )
        plan = ["any"] * args.kills + ["invitation"] * args.invitation_kills
        rng.shuffle(plan)
        kills, busy_kills, outages = [], 0, []
        invitation_kills = []  # (address, its row's state just after the kill)
        outage_after = {
            max(1, round(len(plan) * (i + 1) / (args.outages + 1))) for i in range(args.outages)
        }
        try:
            for target in plan:
                if self.deadline.passed() or errors:
                    break
                time.sleep(rng.uniform(1.0, 2.5))
                address = None
                if target == "invitation":
                    victim, address = self.worker_sending_an_invitation(workers, within=8.0)
                    was_busy = victim is not None
                else:
                    # The busiest moment: a worker in the middle of a deliver_due, mail flowing.
                    victim = self.busy_worker(workers, within=4.0)
                    was_busy = victim is not None
                    if victim is None:
                        ready = [w for w in workers if self.ready(w)]
                        victim = rng.choice(ready) if ready else None
                if victim is None:
                    continue
                before = len(self.sink.message_ids())
                killed_at = time.time()
                victim.kill()
                busy_kills += was_busy
                kills.append((victim.nodename, was_busy, before, killed_at))
                if address:
                    state = (
                        self.Notification.objects.filter(kind=INVITATION, to_email=address)
                        .values_list("state", flat=True)
                        .first()
                    )
                    invitation_kills.append((address, state))
                victim.start()  # back at once; it is ready a couple of seconds later
                if len(kills) in outage_after and len(outages) < args.outages:
                    self.redis.kill()
                    started = time.monotonic()
                    time.sleep(args.outage_seconds)
                    self.redis.start()
                    outages.append(time.monotonic() - started)
                    say(f"broker outage {len(outages)}: {outages[-1]:.1f}s")
            say(
                f"{len(kills)} worker SIGKILLs ({busy_kills} mid-delivery, "
                f"{len(invitation_kills)} while an invitation was being sent), "
                f"{len(outages)} outages"
            )
        finally:
            faults_done.set()
            producer.join(self.deadline.left() + 5)
        if errors:
            raise errors[0]
        due = self.due_ids("chaos")
        say(f"{len(due)} messages committed in {produced['waves']} waves; waiting for delivery")
        self.wait_received(due, timeout=max(0.0, min(120.0, self.deadline.left() - 60)))
        return {
            "name": "kills",
            "due": due,
            "kills": kills,
            "busy_kills": busy_kills,
            "invitation_kills": invitation_kills,
            "outages": outages,
            "waves": produced["waves"],
            "unpublished_waves": produced["unpublished_waves"],
        }

    def _tried(self, tag: str) -> int:
        """Rows of the phase that have been tried and failed at least once (a last error)."""
        return self.due_rows(tag).exclude(last_error="").count()

    def _not_delivered_for_good(self, ids) -> int:
        return self.Notification.objects.filter(
            message_id__in=ids, state=self.Notification.State.FAILED
        ).count()

    def _delivered_after(self, ids: set[str], since: float, timeout: float) -> float | None:
        if self.wait_received(ids, timeout=timeout):
            return time.monotonic() - since
        return None

    # --- 3. the SMTP server refuses, then answers 421, longer than the retry horizon ------

    def smtp_down(self) -> dict:
        args = self.args
        horizon = args.retry_base * (2 ** (MAX_ATTEMPTS - 1) - 1)  # the 5 waits of 6 attempts
        down = args.smtp_down_seconds
        say(
            f"SMTP server refusing connections for {down:.0f}s, then answering 421 for "
            f"{down:.0f}s (6 attempts would take {horizon:.1f}s, at most {1.5 * horizon:.1f}s "
            "with jitter)"
        )
        from notifications.models import Notification

        alerts_before = Notification.objects.filter(kind="delivery.outage").count()
        self.sink.refuse()
        started = time.monotonic()
        # Waves only at first: each of these messages then meets the whole outage.
        producer, produced, errors = self.produce(
            "smtp", until=lambda _stats: time.monotonic() - started > down / 2, wave=25
        )
        producer.join(down + 10)
        time.sleep(max(0.0, started + down - time.monotonic()))
        self.sink.set_mode("421")
        self.sink.listen()
        time.sleep(max(0.0, started + 2 * down - time.monotonic()))
        ids = self.due_ids("smtp")
        arrived_during = len(ids & set(self.sink.message_ids()))
        tried = self._tried("smtp")
        attempts = sum(self.due_rows("smtp").values_list("attempts", flat=True))
        failed_during = self._not_delivered_for_good(ids)
        self.sink.set_mode("healthy")
        healed = time.monotonic()
        after = self._delivered_after(ids, healed, min(60.0, self.deadline.left()))
        if errors:
            raise errors[0]
        alerts = Notification.objects.filter(kind="delivery.outage").count() - alerts_before
        ended = Notification.objects.filter(kind="delivery.outage_ended").count()
        return {
            "name": "smtp_down",
            "due": ids,
            "line": (
                f"SMTP refused {down:.0f}s then 421 {down:.0f}s, longer than the retry horizon "
                f"({horizon:.1f}s, at most {1.5 * horizon:.1f}s): {len(ids)} messages due "
                f"({produced['waves']} waves), {tried} tried and refused during it, "
                f"{arrived_during} got through, {failed_during} failed for good, {attempts} "
                f"attempts spent; "
                + (
                    f"all delivered {after:.1f}s after the server came back"
                    if after is not None
                    else "NOT all delivered"
                )
                + f"; admin alerts: {alerts} for the outage, {ended} for its end"
            ),
            "as_planned": tried == len(ids) > 0 and arrived_during == 0,
            "failed": failed_during,
        }

    # --- 4. the SMTP server hangs --------------------------------------------------------

    def smtp_hung(self) -> dict:
        args = self.args
        hung = args.hung_seconds
        say(f"SMTP server hung (accepts, never greets) for {hung:.0f}s")
        self.sink.set_mode("hung")
        started = time.monotonic()
        producer, produced, errors = self.produce(
            "hung", until=lambda _stats: time.monotonic() - started > hung / 2, wave=25
        )
        producer.join(hung + 10)
        time.sleep(max(0.0, started + hung - time.monotonic()))
        ids = self.due_ids("hung")
        tried = self._tried("hung")
        arrived_during = len(ids & set(self.sink.message_ids()))
        held = len(self.sink._held)
        self.sink.set_mode("healthy")
        healed = time.monotonic()
        after = self._delivered_after(ids, healed, min(60.0, self.deadline.left()))
        if errors:
            raise errors[0]
        failed = self._not_delivered_for_good(ids)
        return {
            "name": "smtp_hung",
            "due": ids,
            "line": (
                f"SMTP server hung {hung:.0f}s: {len(ids)} messages due "
                f"({produced['waves']} waves), {held} connections left waiting for a greeting, "
                f"{tried} messages timed out and waited, {arrived_during} got through, "
                f"{failed} failed for good; "
                + (
                    f"all delivered {after:.1f}s after the server answered again"
                    if after is not None
                    else "NOT all delivered"
                )
            ),
            "as_planned": held > 0 and arrived_during == 0,
            "failed": failed,
        }

    # --- 5. PostgreSQL stopped mid-delivery ----------------------------------------------

    def postgres_down(self) -> dict:
        args = self.args
        if self.postgres is None:
            return {"name": "postgres_down", "due": set(), "skipped": self.postgres_skipped}
        from django.db import connection

        down = args.db_down_seconds
        restarted_at = []
        # Waves of 100: a batch then takes a worker a good part of a second to deliver.
        producer, produced, errors = self.produce(
            "pgdown",
            until=lambda _stats: bool(restarted_at) and time.monotonic() - restarted_at[0] > 2,
            wave=100,
            tolerate_database_errors=True,
        )
        time.sleep(1.0)
        # Mid-delivery: rows claimed by a worker (state `sending`), seen just before the crash.
        claimed, end = 0, time.monotonic() + 10.0
        while not claimed and time.monotonic() < end:
            claimed = self.Notification.objects.filter(
                state=self.Notification.State.SENDING
            ).count()
            if not claimed:
                time.sleep(0.01)
        self.postgres.crash()
        stopped_at = time.monotonic()
        say(f"PostgreSQL crashed (SIGQUIT to the postmaster) with {claimed} rows claimed")
        time.sleep(down)
        self.postgres.start()
        restarted_at.append(time.monotonic())
        say(f"PostgreSQL started again after {restarted_at[0] - stopped_at:.1f}s")
        producer.join(30)
        connection.close()  # this thread's connection died with the server
        if errors:
            raise errors[0]
        ids = self.due_ids("pgdown")
        after = self._delivered_after(ids, restarted_at[0], min(60.0, self.deadline.left()))
        failed = self._not_delivered_for_good(ids)
        return {
            "name": "postgres_down",
            "due": ids,
            "line": (
                f"PostgreSQL down (crashed) for {restarted_at[0] - stopped_at:.1f}s with "
                f"{claimed} rows claimed by workers delivering them: {len(ids)} messages due "
                f"({produced['waves']} waves, "
                f"{produced['refused']} refused while it was down), {failed} failed for good; "
                + (
                    f"all delivered {after:.1f}s after it was back"
                    if after is not None
                    else "NOT all delivered"
                )
            ),
            "as_planned": claimed > 0 and produced["refused"] > 0,
            "failed": failed,
        }

    # --- all of it -----------------------------------------------------------------------

    def run(self) -> dict:
        args = self.args
        workers = [
            self.worker(f"w{i}", claim_timeout=args.claim_timeout) for i in range(args.workers)
        ]
        for worker in workers:
            worker.wait_until_ready(60)
        say(f"{len(workers)} workers ready (claim timeout {args.claim_timeout}s)")
        sweeper = self.start_sweeps()
        phases = [self.kills_and_broker_outages(workers)]
        phases.append(self.smtp_down())
        phases.append(self.smtp_hung())
        phases.append(self.postgres_down())
        due = self.due_ids()
        say(f"{len(due)} messages due in all; waiting for the last of them")
        self.wait_received(due, timeout=max(0.0, self.deadline.left() - 10))
        # Late duplicates (a stale claim delivered twice) would show up now.
        self.sink._wait_until(lambda _n: False, 3.0)
        self.stop_sweeps.set()
        sweeper.join(10)
        for worker in workers:
            worker.stop()
        states = Counter(
            self.Notification.objects.filter(message_id__in=due).values_list("state", flat=True)
        )
        lost_rows = list(
            self.Notification.objects.filter(message_id__in=due - set(self.sink.message_ids()))
            .order_by("sent_at")
            .values("message_id", "kind", "state", "attempts", "sent_at", "last_error")
        )
        invitations = self.Notification.objects.filter(message_id__in=due, kind=INVITATION)
        return {
            "due": due,
            "phases": phases,
            "states": dict(states),
            "lost_rows": lost_rows,
            "invitations": invitations.count(),
            "sweeps": self.stats["sweeps"],
        }


def report(result: dict, sink: ChaosSink, args) -> int:
    due = result["due"]
    received = Counter(sink.message_ids())
    sent = len(due & received.keys())
    lost = len(due - received.keys())
    duplicated = sum(1 for mid, times in received.items() if times > 1)
    unexpected = len(received.keys() - due)
    kills_phase, *fault_phases = result["phases"]
    invitation_kills = kills_phase["invitation_kills"]
    say(
        f"{len(kills_phase['kills'])} worker SIGKILLs ({kills_phase['busy_kills']} "
        f"mid-delivery, {len(invitation_kills)} while an invitation was being sent, "
        f"{sum(state == 'sending' for _, state in invitation_kills)} of them with the "
        f"invitation still claimed), {len(kills_phase['outages'])} broker outages "
        f"({', '.join(f'{s:.1f}s' for s in kills_phase['outages'])}), "
        f"{kills_phase['waves']} waves ({kills_phase['unpublished_waves']} committed while the "
        f"broker was down)"
    )
    not_as_planned = []
    failed = 0
    for phase in fault_phases:
        if "skipped" in phase:
            say(f"PostgreSQL stop: skipped by design: {phase['skipped']}")
            continue
        say(phase["line"])
        failed += phase["failed"]
        if not phase["as_planned"]:
            not_as_planned.append(phase["name"])
    say(
        f"{result['sweeps']} sweeps published, {len(received)} distinct Message-IDs received "
        f"({sum(received.values())} messages, {result['invitations']} of them invitations), "
        f"{unexpected} not due, {sink.dropped_after_dot} final dot(s) received from a client "
        "that vanished before the sink handled the message (dropped by the sink)"
    )
    say(f"row states: {result['states']}")
    if lost:
        # Where the window is: a lost row was committed `sent` just before a worker died.
        kills = [(at, name) for name, _busy, _before, at in kills_phase["kills"]]
        for row in result["lost_rows"][:40]:
            sent_at = row["sent_at"].timestamp() if row["sent_at"] else None
            after = min(
                ((at - sent_at, name) for at, name in kills if sent_at and at >= sent_at),
                default=None,
            )
            killed = f"{after[1]} killed {after[0] * 1000:.1f} ms later" if after else "no kill"
            say(
                f"lost {row['message_id']} ({row['kind']}): state {row['state']}, attempts "
                f"{row['attempts']}, sent_at {row['sent_at']}, {killed}, last error "
                f"{row['last_error'][:120]!r}"
            )
    print(f"reminders: {len(due)} due, {sent} sent, {lost} lost, {duplicated} duplicated")
    if lost or duplicated or unexpected or failed:
        return 1
    if (
        len(kills_phase["kills"]) < args.kills + args.invitation_kills
        or len(invitation_kills) < args.invitation_kills
        or len(kills_phase["outages"]) < args.outages
        or not_as_planned
    ):
        say(
            "the planned faults were not all injected"
            + (f" ({', '.join(not_as_planned)})" if not_as_planned else "")
            + ": this run proves less than it should"
        )
        return 2
    return 0


def main() -> int:
    args = options()
    deadline = Deadline(args.deadline)
    workdir = Path(tempfile.mkdtemp(prefix="credportal-chaos-"))
    configured = os.environ.get("DATABASE_URL", "")
    postgres, postgres_skipped = None, "the database is SQLite, not PostgreSQL"
    if urlsplit(configured).scheme in ("postgres", "postgresql", "pgsql"):
        postgres_skipped = "--postgres shared: DATABASE_URL's server is not ours to stop"
        if args.postgres == "private":
            postgres = PrivatePostgres()
            postgres_skipped = postgres.unavailable()
            if postgres_skipped:
                say(f"no private PostgreSQL ({postgres_skipped}): using DATABASE_URL's server")
                postgres = None
    database = ScratchDatabase(
        postgres.url if postgres else configured,
        os.environ.get("CHAOS_DATABASE_NAME", "credportal_chaos"),
        workdir,
    )
    sink = ChaosSink()
    redis = RedisServer()
    chaos = None
    created = False
    status = 3  # interrupted or crashed
    try:
        if postgres:
            postgres.start()
        sink.start()
        redis.start()
        database.create()
        created = True
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "DATABASE_URL": database.url,
                "CELERY_BROKER_URL": redis.url,
                "CELERY_TASK_ALWAYS_EAGER": "false",
                "EMAIL_URL": sink.url,
                "DEBUG": "true",
                "TESTING": "false",
                "VAR_DIR": str(workdir / "var"),
                "SITE_URL": "http://chaos.credportal.test",
                "LOG_LEVEL": "ERROR",  # this process: no warning per unpublished wave
                "CONN_MAX_AGE": "0",
                # The delivery clock, shrunk (the workers read these): retries after 0.2 s,
                # 0.4 s ... instead of minutes; tries every second while the server is down.
                "NOTIFICATION_RETRY_BASE_SECONDS": str(args.retry_base),
                "NOTIFICATION_OUTAGE_RETRY_SECONDS": str(args.outage_retry),
                "NOTIFICATION_SMTP_CONNECT_BUDGET": str(args.connect_budget),
                "EMAIL_TIMEOUT": str(args.smtp_timeout),
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        server = f"private PostgreSQL {postgres.version} server, " if postgres else ""
        say(
            f"database: {server}{database.kind}; broker: private redis {redis.url}; "
            f"sink: {sink.url}"
        )
        call_command("migrate", verbosity=0)
        chaos = Chaos(
            args, sink=sink, redis=redis, workdir=workdir, deadline=deadline, postgres=postgres
        )
        chaos.postgres_skipped = postgres_skipped
        chaos.db_kind = "PostgreSQL" if database.postgres else "SQLite"
        chaos.throughput()
        result = chaos.run()
        status = report(result, sink, args)
        return status
    finally:
        for worker in chaos.workers if chaos else []:
            if worker.running:
                worker.kill()
        redis.stop()
        sink.stop()
        if created:
            from django.db import connections

            connections.close_all()
            if postgres is None or postgres.running:
                database.drop()
        if postgres:
            if status != 0:
                (workdir / "postgres.log").write_text(postgres.log())
            postgres.destroy()
        if status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"worker logs kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
