"""`manage.py bench`: credportal measured against its own floor, in one run.

For each page: median and 95th percentile over repetitions through Django's full request
stack (the test client, the production middleware), the number of queries, the time the
page's own SQL takes when replayed through a raw psycopg cursor fetching every row, and
overhead_ratio = (median - hello median) / sql median: what the ORM, Python and templates
cost on top of the database. Jobs (the expiry scan, reminder delivery) are compared with
the plainest way to do the same work.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clients.models import Client as ProviderClient
from notifications.models import Notification
from portal.celery import solo_worker_command
from portal.models import Firm, Membership, Role, User
from workflows import services
from workflows.models import AccessGrant

SERVER_SIDE_CURSOR = re.compile(
    r"^DECLARE\s+\S+\s+.*?CURSOR\s+(?:WITH(?:OUT)?\s+HOLD\s+)?FOR\s+", re.S
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def timed(function, *, repeat: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


class Bench:
    def __init__(self, *, size: str, repeat: int, out: Path, log=print):
        self.size = size
        self.repeat = repeat
        self.out = out
        self.log = log
        self.result: dict = {"size": size, "database": connection.vendor, "operations": {}}

    # --- people -------------------------------------------------------------------

    def browser_for(self, user: User) -> Client:
        if not Authenticator.objects.filter(user=user).exists():
            TOTP.activate(user, "JBSWY3DPEHPK3PXP")
        client = Client(HTTP_HOST="testserver")
        client.force_login(user)
        return client

    def largest_firm(self) -> Firm:
        from django.db.models import Count

        return Firm.objects.annotate(n=Count("clients")).order_by("-n", "pk").first()

    def firm_nearest(self, clients: int) -> Firm:
        from django.db.models import Count

        firms = Firm.objects.annotate(n=Count("clients")).order_by("pk")
        return min(firms, key=lambda firm: (abs(firm.n - clients), firm.pk))

    def staff_with(self, firm: Firm, count: int | None) -> User:
        from django.db.models import Count

        staff = (
            User.objects.filter(
                memberships__firm=firm, memberships__role__in=[Role.STAFF, Role.ADMIN]
            )
            .annotate(n=Count("assigned_clients", distinct=True))
            .order_by("-n", "pk")
        )
        if count is None:
            return staff.first()
        exact = [user for user in staff if user.n == count]
        return exact[0] if exact else min(staff, key=lambda user: abs(user.n - count))

    # --- measuring a page -----------------------------------------------------------

    def replay_ms(self, queries: list[str]) -> float:
        """The page's own SQL through a raw cursor, fetching every row (median of runs). A
        server-side cursor's DECLARE is replayed as its SELECT, read to the end."""
        raw = connection.connection  # the DB-API connection Django already holds
        queries = [SERVER_SIDE_CURSOR.sub("", sql, count=1) for sql in queries]

        def run():
            cursor = raw.cursor()
            try:
                for sql in queries:
                    cursor.execute(sql)
                    if cursor.description:
                        cursor.fetchall()
            finally:
                cursor.close()

        if connection.vendor == "sqlite":
            return statistics.median(timed(run, repeat=self.repeat))
        with transaction.atomic():  # replayed writes (session saves) are rolled back
            samples = timed(run, repeat=self.repeat)
            transaction.set_rollback(True)
        return statistics.median(samples)

    def page(self, name: str, browser: Client, url: str, *, stream: bool = False) -> dict:
        def get():
            response = browser.get(url, secure=True)
            if stream:
                b"".join(response.streaming_content)
            assert response.status_code == 200, (name, response.status_code)
            return response

        get()
        with CaptureQueriesContext(connection) as captured:
            get()
        queries = [q["sql"] for q in captured.captured_queries]
        samples = timed(get, repeat=self.repeat)
        sql_ms = self.replay_ms(queries)
        median = statistics.median(samples)
        hello = self.result["floors"]["hello"]["median_ms"]
        entry = {
            "median_ms": round(median, 2),
            "p95_ms": round(percentile(samples, 0.95), 2),
            "queries": len(queries),
            "sql_ms": round(sql_ms, 3),
            "overhead_ratio": round((median - hello) / sql_ms, 2) if sql_ms > 0 else None,
        }
        self.result["operations"][name] = entry
        self.log(f"  {name:<18} {entry}")
        return entry

    # --- floors -------------------------------------------------------------------

    def floors(self, browser: Client) -> None:
        def hello():
            assert browser.get(reverse("ping"), secure=True).status_code == 204

        samples = timed(hello, repeat=self.repeat * 2)

        def roundtrip():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchall()

        floors = {
            "hello": {
                "median_ms": round(statistics.median(samples), 2),
                "p95_ms": round(percentile(samples, 0.95), 2),
            },
            "db_roundtrip_ms": round(statistics.median(timed(roundtrip, repeat=200)), 3),
            "redis_roundtrip_ms": self.redis_roundtrip(),
        }
        self.result["floors"] = floors
        self.log(f"  floors {floors}")

    def redis_roundtrip(self):
        url = settings.CELERY_BROKER_URL
        if not url.startswith("redis"):
            return None
        import redis

        client = redis.Redis.from_url(url)
        return round(statistics.median(timed(client.ping, repeat=200)), 3)

    # --- pages --------------------------------------------------------------------

    def pages(self) -> None:
        firm = self.largest_firm()
        busiest = self.staff_with(firm, None)
        browser = self.browser_for(busiest)
        self.floors(browser)
        dashboard = reverse("dashboard")
        self.page("caseload_page_1", browser, dashboard)
        # Numbered pages: page 20 is an OFFSET of 475 (past the last page: the last one).
        self.page("caseload_page_20", browser, f"{dashboard}?page=20")
        self.page("caseload_35", self.browser_for(self.staff_with(firm, 35)), dashboard)
        self.page("caseload_350", self.browser_for(self.staff_with(firm, 350)), dashboard)
        busy_client = (
            ProviderClient.objects.filter(firm=firm, assigned_staff=busiest)
            .order_by("-last_activity_at", "pk")
            .first()
        )
        self.page("client_page", browser, reverse("client_detail", args=[busy_client.public_id]))
        provider = (
            User.objects.filter(
                client_records__firm=firm,
                client_records__profiles__access_grants__state=AccessGrant.State.AWAITING_PROVIDER,
                # with someone at the office: the same page shape (and queries) at every size
                client_records__delegates__is_active=True,
            )
            .order_by("pk")
            .first()
        )
        if provider is not None:
            self.page("provider_todos", self.browser_for(provider), dashboard)
        admin = (
            Membership.objects.filter(firm=firm, role=Role.ADMIN, is_active=True)
            .select_related("user")
            .order_by("pk")
            .first()
            .user
        )
        admin_browser = self.browser_for(admin)
        self.page("stuck_report", admin_browser, reverse("stuck_report"))
        # The same report for a firm of 3,000 clients (S's largest) at every size: its cost
        # should follow the firm's own data, not the size of the whole table.
        same = self.firm_nearest(3000)
        same_admin = (
            Membership.objects.filter(firm=same, role=Role.ADMIN, is_active=True)
            .select_related("user")
            .order_by("pk")
            .first()
            .user
        )
        entry = self.page(
            "stuck_report_3000", self.browser_for(same_admin), reverse("stuck_report")
        )
        entry["firm_clients"] = same.clients.count()
        entry = self.page("stuck_csv_10k", admin_browser, reverse("stuck_report_csv"), stream=True)
        response = admin_browser.get(reverse("stuck_report_csv"), secure=True)
        entry["rows"] = sum(1 for _ in b"".join(response.streaming_content).splitlines()) - 1

    # --- jobs ---------------------------------------------------------------------

    def expiry_scan(self) -> None:
        """The scan over every due grant, against one raw UPDATE ... RETURNING (rolled back)."""
        now = timezone.now()
        due = services.grants_due_for_expiry(now)
        rows = due.count()
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            expired = services.grants_expire_due(now=now)
            seconds = time.perf_counter() - start
            transaction.set_rollback(True)
        table = AccessGrant._meta.db_table
        with transaction.atomic(), connection.cursor() as cursor:
            start = time.perf_counter()
            cursor.execute(
                f"UPDATE {table} SET state = 'expired', state_entered_at = %s "  # noqa: S608
                "WHERE state IN ('awaiting_provider', 'provider_says_done') AND deadline <= %s "
                "RETURNING id",
                [now, now],
            )
            raw_rows = len(cursor.fetchall())
            raw_seconds = time.perf_counter() - start
            transaction.set_rollback(True)
        entry = {
            "rows": rows,
            "expired": expired,
            "raw_rows": raw_rows,
            "seconds": round(seconds, 3),
            "queries": len(captured.captured_queries),
            "queries_per_1000_rows": round(len(captured.captured_queries) * 1000 / rows, 1)
            if rows
            else None,
            "raw_seconds": round(raw_seconds, 4),
            "ratio": round(seconds / raw_seconds, 2) if raw_seconds else None,
        }
        self.result["operations"]["expiry_scan"] = entry
        self.log(f"  expiry_scan        {entry}")

    def reminder_delivery(self, emails: int) -> None:
        """One Celery worker process delivering `emails` due reminders to a local SMTP sink
        (a process of its own), against the same loop in this process without Celery."""
        from notifications import delivery

        firm = self.largest_firm()
        with CountingSink() as sink:
            baseline = self._deliver_batch(firm, emails, "baseline", sink, worker=False)
            with_celery = self._deliver_batch(firm, emails, "celery", sink, worker=True)
            duplicates = sink.received - sink.distinct
        entry = {
            "emails": emails,
            "emails_per_second": round(with_celery, 1),
            "baseline_emails_per_second": round(baseline, 1),
            "ratio": round(with_celery / baseline, 2) if baseline else None,
            "lanes": delivery.LANES,
            "duplicates_at_sink": duplicates,
        }
        self.result["operations"]["reminder_delivery"] = entry
        self.log(f"  reminder_delivery  {entry}")

    def _deliver_batch(self, firm, emails: int, label: str, sink, *, worker: bool) -> float:
        from django.test import override_settings

        from notifications import delivery

        # Only this batch is due: the dataset's due emails wait (and are put back after).
        waiting = list(
            Notification.objects.filter(
                state=Notification.State.SCHEDULED, due_at__lte=timezone.now()
            ).values_list("pk", "due_at")
        )
        Notification.objects.filter(pk__in=[pk for pk, _ in waiting]).update(
            due_at=timezone.now() + timezone.timedelta(days=3650)
        )
        now = timezone.now()
        stamp = f"{label}-{time.time_ns()}"
        Notification.objects.bulk_create(
            [
                Notification(
                    firm=firm,
                    to_email=f"provider{index}@bench.example",
                    channel=Notification.Channel.EMAIL,
                    kind="bench.reminder",
                    subject_type="bench",
                    subject_id=stamp,
                    step=str(index),
                    idempotency_key=f"bench:{stamp}:{index}",
                    due_at=now,
                    title=f"Reminder {index}: approve your credentialer's access request",
                    body_text="Log into the CMS Identity & Access system and approve it.\n" * 8,
                    body_html="<p>Log into the CMS Identity &amp; Access system.</p>" * 8,
                    link_path="/dashboard/",
                    message_id=f"<{stamp}-{index}@bench.example>",
                )
                for index in range(emails)
            ],
            batch_size=1000,
        )
        target = sink.distinct + emails
        if worker:
            with CeleryWorker(sink.port) as celery_worker:
                start = time.perf_counter()  # the worker is up: its start-up is not counted
                celery_worker.deliver_until(sink, target)
        else:
            mailers = {
                "default": {
                    "BACKEND": "notifications.smtp.EmailBackend",
                    "OPTIONS": {"host": "127.0.0.1", "port": sink.port, "timeout": 30},
                }
            }
            start = time.perf_counter()
            with override_settings(MAILERS=mailers):
                delivery.deliver_due(batch_size=500, max_batches=emails // 500 + 2)
        sink.wait_for(target, timeout=600)
        rate = emails / (time.perf_counter() - start)
        Notification.objects.filter(kind="bench.reminder").delete()
        by_due: dict = {}
        for pk, due_at in waiting:
            by_due.setdefault(due_at, []).append(pk)
        for due_at, pks in by_due.items():  # reminders share their civil hours: few UPDATEs
            Notification.objects.filter(pk__in=pks).update(due_at=due_at)
        return rate

    # --- all ----------------------------------------------------------------------

    def run(self, *, emails: int, only: str = "") -> dict:
        self.result["dataset"] = {
            "firms": Firm.objects.count(),
            "clients": ProviderClient.objects.count(),
            "access_grants": AccessGrant.objects.count(),
            "notifications": Notification.objects.count(),
            "largest_firm_clients": self.largest_firm().clients.count(),
        }
        self.log(f"bench {self.size} on {connection.vendor}: {self.result['dataset']}")
        if only in ("", "pages"):
            self.pages()
        if only in ("", "scan"):
            self.expiry_scan()
        if only in ("", "delivery"):
            self.reminder_delivery(emails)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.result, indent=2, default=str))
        return self.result


def database_label() -> str:
    settings_dict = connection.settings_dict
    host = settings_dict.get("HOST") or urlsplit(str(settings_dict.get("NAME"))).path
    return f"{connection.vendor} {host}"


class CountingSink:
    """devtools/smtp_counter.py in a process of its own, so it takes no time from the sender."""

    def __init__(self):
        import tempfile

        self.path = Path(tempfile.mkstemp(suffix=".count")[1])
        self.process = None
        self.port = None

    def __enter__(self):
        script = Path(settings.BASE_DIR) / "devtools" / "smtp_counter.py"
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(script), str(self.path)], stdout=subprocess.PIPE, text=True
        )
        self.port = int(self.process.stdout.readline())
        return self

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.path.unlink(missing_ok=True)

    def _counts(self) -> tuple[int, int]:
        text = self.path.read_text().split()
        return (int(text[0]), int(text[1])) if len(text) == 2 else (0, 0)

    @property
    def received(self) -> int:
        return self._counts()[0]

    @property
    def distinct(self) -> int:
        return self._counts()[1]

    def wait_for(self, distinct: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.distinct < distinct and time.monotonic() < deadline:
            time.sleep(0.02)


class CeleryWorker:
    """One `celery worker --pool=solo` process, started and ready before it is timed."""

    def __init__(self, smtp_port: int):
        self.env = os.environ | {
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "CELERY_TASK_ALWAYS_EAGER": "false",
        }
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(  # noqa: S603
            solo_worker_command(),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        for line in self.process.stdout:
            if " ready." in line or time.monotonic() > deadline:
                break
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self):
        for _line in self.process.stdout:
            pass

    def deliver_until(self, sink, target: int) -> None:
        from notifications.tasks import deliver_due

        deliver_due.delay()  # one task delivers batch after batch until nothing is due
        deadline = time.monotonic() + 600
        while sink.distinct < target and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the Celery worker exited")
            time.sleep(0.02)

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.wait(timeout=30)
