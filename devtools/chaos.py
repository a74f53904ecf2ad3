"""`make chaos`: deliver thousands of due reminders through real workers while breaking things.

On a scratch database (PostgreSQL: a dedicated database, created and dropped, when
DATABASE_URL points at PostgreSQL; otherwise a temporary SQLite file), with a private
redis-server as the broker and an SMTP sink (aiosmtpd) in this process:

1. throughput, no faults: N due emails, one worker process, timed to the last one received;
2. chaos: several workers deliver at least N reminders committed in waves (each wave one
   transaction, delivery requested on commit, as a workflow transition does), while the
   busiest worker is SIGKILLed again and again (and restarted), and the broker is killed
   and restarted (empty: no persistence) twice; a sweep runs every few seconds, as beat
   does every minute. Then everything is left to finish.

What the sink received is counted by Message-ID against the due rows: on stdout, one
throughput line and one summary line, `reminders: N due, N sent, 0 lost, 0 duplicated`.
Exits 1 if any reminder was lost or duplicated, 2 if the faults could not be injected as
planned, and stops by itself (every wait has a deadline). Progress goes to stderr.

    make chaos                             # or: .venv/bin/python devtools/chaos.py --help
    CHAOS_ARGS="--reminders 5000" make chaos
"""

from __future__ import annotations

import argparse
import os
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

from aiosmtpd.smtp import SMTP  # noqa: E402

from tests import smtp_sink  # noqa: E402  (no Django needed)
from tests.redis_server import RedisServer  # noqa: E402

QUEUE = "celery"  # the default queue: the broker is ours alone
RECEIVED = re.compile(r"Task notifications\.tasks\.deliver_due\[[0-9a-f-]+\] received")
FINISHED = re.compile(
    r"Task notifications\.tasks\.deliver_due\[[0-9a-f-]+\] (succeeded|failed|raised)"
)


def say(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


# --- the SMTP sink, counting what a vanishing client leaves behind ------------------------


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


class _CountingHandler(smtp_sink._Handler):
    async def handle_DATA(self, server, session, envelope):
        server.ends_handled += 1
        return await super().handle_DATA(server, session, envelope)


class _CountingController(smtp_sink._EphemeralPortController):
    def __init__(self, *args, sink, **kwargs):
        super().__init__(*args, **kwargs)
        self._sink = sink

    def factory(self):
        return _CountingSMTP(self.handler, sink=self._sink, **self.SMTP_kwargs)


class ChaosSink(smtp_sink.SMTPSink):
    def __init__(self):
        super().__init__()
        self.dropped_after_dot = 0
        self._controller = _CountingController(
            _CountingHandler(self), hostname=smtp_sink.HOST, port=0, sink=self
        )


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=2000, help="due reminders, at least")
    parser.add_argument("--kills", type=int, default=12, help="worker SIGKILLs")
    parser.add_argument("--outages", type=int, default=2, help="broker kills and restarts")
    parser.add_argument("--outage-seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=3, help="worker processes (solo pool)")
    parser.add_argument("--wave", type=int, default=50, help="reminders per transaction")
    parser.add_argument("--pace", type=float, default=0.5, help="seconds between waves")
    parser.add_argument("--claim-timeout", type=int, default=5, help="NOTIFICATION_CLAIM_TIMEOUT")
    parser.add_argument("--sweep-every", type=float, default=2.0, help="seconds between sweeps")
    parser.add_argument("--throughput", type=int, default=2000, help="emails in the clean run")
    parser.add_argument("--deadline", type=float, default=270.0, help="seconds for everything")
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
    def __init__(self, args, *, sink: ChaosSink, redis: RedisServer, workdir: Path, deadline):
        from notifications.models import Notification
        from portal.models import Firm

        self.args = args
        self.sink = sink
        self.redis = redis
        self.workdir = workdir
        self.deadline = deadline
        self.Notification = Notification
        self.firm, _ = Firm.objects.get_or_create(
            slug="chaos",
            defaults={"name": "Chaos Credentialing", "contact_email": "help@chaos.test"},
        )
        self.workers = []

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
                kind="bench.reminder" if prefix == "bench" else "chaos.reminder",
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

    def commit_wave(self, prefix: str, count: int, *, due: bool = True) -> None:
        """One transaction, as a transition: rows stored, delivery requested on commit."""
        from django.db import transaction
        from django.utils import timezone

        from notifications.outbox import schedule

        now = timezone.now()
        due_at = now - timedelta(seconds=1) if due else now + timedelta(days=1)
        with transaction.atomic():
            schedule(self.reminders(prefix, count, due_at))

    def due_ids(self, kind: str) -> set[str]:
        from django.utils import timezone

        return set(
            self.Notification.objects.filter(
                kind=kind, channel="email", due_at__lte=timezone.now()
            ).values_list("message_id", flat=True)
        )

    @staticmethod
    def request_sweep() -> bool:
        from notifications.tasks import deliver_due

        try:
            deliver_due.delay()
        except Exception:  # noqa: BLE001  (broker away: the next sweep tries again)
            return False
        return True

    def wait_received(self, ids: set[str], timeout: float, *, sweep: bool) -> bool:
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
            if sweep:
                self.request_sweep()
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
        ids = self.due_ids("bench.reminder")
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

    # --- 2. chaos -------------------------------------------------------------------------

    def chaos(self) -> dict:
        args = self.args
        rng = random.Random(args.seed)
        workers = [
            self.worker(f"w{i}", claim_timeout=args.claim_timeout) for i in range(args.workers)
        ]
        for worker in workers:
            worker.wait_until_ready(60)
        say(f"{len(workers)} workers ready (claim timeout {args.claim_timeout}s)")

        stop = threading.Event()
        faults_done = threading.Event()
        stats = {"waves": 0, "produced": 0, "unpublished_waves": 0, "sweeps": 0}
        errors: list[BaseException] = []

        def producer():
            from django.db import connection

            try:
                while not stop.is_set() and not self.deadline.passed():
                    if stats["produced"] >= args.reminders and faults_done.is_set():
                        break
                    broker_up = self.redis.running
                    self.commit_wave(f"chaos-w{stats['waves']}", args.wave)
                    stats["waves"] += 1
                    stats["produced"] += args.wave
                    stats["unpublished_waves"] += not broker_up
                    stop.wait(args.pace)
            except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
                errors.append(exc)
            finally:
                connection.close()

        def sweeper():
            while not stop.wait(args.sweep_every):
                stats["sweeps"] += self.request_sweep()

        threads = [threading.Thread(target=producer), threading.Thread(target=sweeper)]
        for thread in threads:
            thread.start()

        kills, busy_kills, outages = [], 0, []
        outage_after = {
            max(1, round(args.kills * (i + 1) / (args.outages + 1))) for i in range(args.outages)
        }
        try:
            while len(kills) < args.kills and not self.deadline.passed() and not errors:
                time.sleep(rng.uniform(1.0, 2.5))
                # The busiest moment: a worker in the middle of a deliver_due, mail flowing.
                victim, end = None, time.monotonic() + 4.0
                while victim is None and time.monotonic() < end:
                    candidates = [w for w in workers if self.busy(w)]
                    if candidates:
                        victim = rng.choice(candidates)
                    else:
                        time.sleep(0.005)
                was_busy = victim is not None
                if victim is None:
                    ready = [w for w in workers if self.ready(w)]
                    if not ready:
                        continue
                    victim = rng.choice(ready)
                before = len(self.sink.message_ids())
                killed_at = time.time()
                victim.kill()
                busy_kills += was_busy
                kills.append((victim.nodename, was_busy, before, killed_at))
                victim.start()  # back at once; it is ready a couple of seconds later
                if len(kills) in outage_after:
                    self.redis.kill()
                    started = time.monotonic()
                    time.sleep(args.outage_seconds)
                    self.redis.start()
                    outages.append(time.monotonic() - started)
                    say(f"broker outage {len(outages)}: {outages[-1]:.1f}s")
            say(f"{len(kills)} worker SIGKILLs ({busy_kills} mid-delivery), {len(outages)} outages")
        finally:
            faults_done.set()
            threads[0].join(self.deadline.left() + 5)
        if errors:
            raise errors[0]

        due = self.due_ids("chaos.reminder")
        say(f"{len(due)} reminders committed in {stats['waves']} waves; waiting for delivery")
        self.wait_received(due, timeout=max(0.0, self.deadline.left() - 10), sweep=False)
        # Late duplicates (a stale claim delivered twice) would show up now.
        self.sink._wait_until(lambda _n: False, 3.0)
        stop.set()
        threads[1].join(10)
        for worker in workers:
            worker.stop()
        states = Counter(
            self.Notification.objects.filter(message_id__in=due).values_list("state", flat=True)
        )
        self.lost_rows = list(
            self.Notification.objects.filter(message_id__in=due - set(self.sink.message_ids()))
            .order_by("sent_at")
            .values("message_id", "state", "attempts", "claimed_at", "sent_at", "claim_token")
        )
        return {
            "due": due,
            "kills": kills,
            "busy_kills": busy_kills,
            "outages": outages,
            "states": dict(states),
            "lost_rows": self.lost_rows,
            **stats,
        }


def report(result: dict, sink: ChaosSink, args) -> int:
    due = result["due"]
    received = Counter(sink.message_ids())
    sent = len(due & received.keys())
    lost = len(due - received.keys())
    duplicated = sum(1 for mid, times in received.items() if times > 1)
    unexpected = len(received.keys() - due)
    say(
        f"{len(result['kills'])} worker SIGKILLs ({result['busy_kills']} mid-delivery), "
        f"{len(result['outages'])} broker outages "
        f"({', '.join(f'{s:.1f}s' for s in result['outages'])}), "
        f"{result['waves']} waves ({result['unpublished_waves']} committed while the broker "
        f"was down), {result['sweeps']} sweeps published, {len(received)} distinct Message-IDs "
        f"received ({sum(received.values())} messages), {unexpected} not due, "
        f"{sink.dropped_after_dot} final dot(s) received from a client that vanished before "
        "the sink handled the message (dropped by the sink)"
    )
    say(f"row states: {result['states']}")
    if lost:
        # Where the window is: a lost row was committed `sent` just before a worker died.
        kills = [(at, name) for name, _busy, _before, at in result["kills"]]
        for row in result["lost_rows"][:40]:
            sent_at = row["sent_at"].timestamp() if row["sent_at"] else None
            after = min(
                ((at - sent_at, name) for at, name in kills if sent_at and at >= sent_at),
                default=None,
            )
            killed = f"{after[1]} killed {after[0] * 1000:.1f} ms later" if after else "no kill"
            say(
                f"lost {row['message_id']}: state {row['state']}, attempts {row['attempts']}, "
                f"sent_at {row['sent_at']}, {killed}"
            )
    print(f"reminders: {len(due)} due, {sent} sent, {lost} lost, {duplicated} duplicated")
    if lost or duplicated or unexpected:
        return 1
    if len(result["kills"]) < args.kills or len(result["outages"]) < args.outages:
        say("the planned faults were not all injected: this run proves less than it should")
        return 2
    return 0


def main() -> int:
    args = options()
    deadline = Deadline(args.deadline)
    workdir = Path(tempfile.mkdtemp(prefix="credportal-chaos-"))
    database = ScratchDatabase(
        os.environ.get("DATABASE_URL", ""),
        os.environ.get("CHAOS_DATABASE_NAME", "credportal_chaos"),
        workdir,
    )
    sink = ChaosSink()
    redis = RedisServer()
    chaos = None
    created = False
    status = 3  # interrupted or crashed
    try:
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
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        say(f"database: {database.kind}; broker: private redis {redis.url}; sink: {sink.url}")
        call_command("migrate", verbosity=0)
        chaos = Chaos(args, sink=sink, redis=redis, workdir=workdir, deadline=deadline)
        chaos.db_kind = "PostgreSQL" if database.postgres else "SQLite"
        chaos.throughput()
        result = chaos.chaos()
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
            database.drop()
        if status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"worker logs kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
