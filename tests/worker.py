"""A real Celery worker process for tests, against the configured broker and the test database.

Register with `pytest_plugins = ["tests.worker"]` (with "tests.smtp_sink", whose `smtp_sink`
the worker mails to). The `celery_worker_process` fixture:

1. needs a transactional test (it requests `transactional_db`): the worker is another
   process and sees only committed rows;
2. checks the broker answers (else skip_or_fail: skipped locally, failed in CI);
3. routes this process's tasks to a queue of its own for the duration of the test, and the
   worker consumes only that queue, so a development worker on the same broker (`make run`
   shares var/broker with the tests) or a worker left over from an earlier run cannot take
   the test's tasks, and stale tasks cannot reach the test's worker;
4. starts `celery -A portal worker --pool=solo` with DATABASE_URL pointing at the test
   database, EMAIL_URL at the SMTP sink, eager mode off, and waits (with a deadline) until
   it logs that it is ready;
5. stops it with SIGTERM (SIGKILL after a deadline) before the test database is flushed,
   deletes the queue, and attaches the worker's log to the report of a failed test.

Publishing stays eager unless the test turns it off (see tests/portal/test_celery_worker.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connections

from portal.celery import app as celery_app
from tests.conftest import skip_or_fail

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
BROKER_TIMEOUT = 5.0

_worker_key = pytest.StashKey["CeleryWorkerProcess"]()


class CeleryWorkerProcess:
    """A started `celery worker` subprocess whose output goes to `log_path`."""

    def __init__(self, *, queue: str, nodename: str, log_path: Path, env: dict[str, str]):
        self.queue = queue
        self.nodename = nodename
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={self.nodename}",
            f"--queues={self.queue}",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float, *, count: int = 1) -> list[re.Match[str]]:
        """The first `count` matches of `pattern` in the log, waiting up to `timeout` seconds.

        Raises RuntimeError if the worker exits first, TimeoutError at the deadline.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            matches = list(regex.finditer(self.log()))
            if len(matches) >= count:
                return matches[:count]
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"celery worker exited with status {self.process.returncode} "
                    f"before logging {pattern!r}"
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(f"celery worker did not log {pattern!r} within {timeout:g}s")
            time.sleep(0.1)

    def wait_until_ready(self, timeout: float = READY_TIMEOUT) -> None:
        self.wait_for_log(rf"{re.escape(self.nodename)} ready\.", timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Warm shutdown (SIGTERM); SIGKILL if it outlives `timeout`. The exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()  # --pool=solo: one process, no children to orphan
                process.wait(timeout)
        return process.returncode


def worker_database_url() -> str:
    """DATABASE_URL for the test database pytest-django created (call with the db set up)."""
    db = connections["default"].settings_dict
    name = str(db["NAME"])
    if db["ENGINE"] == "django.db.backends.sqlite3":
        if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            skip_or_fail("the SQLite test database is in memory; a worker process cannot open it")
        return f"sqlite:///{Path(name).resolve()}"
    configured = os.environ.get("DATABASE_URL")
    if configured:
        # Keep scheme, credentials, host and options; swap the database name.
        return urlunsplit(urlsplit(configured)._replace(path="/" + quote(name)))
    credentials = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    netloc = f"{credentials}@" if credentials else ""
    netloc += db.get("HOST") or "localhost"
    if db.get("PORT"):
        netloc += f":{db['PORT']}"
    scheme = {"django.db.backends.postgresql": "postgres"}.get(db["ENGINE"], db["ENGINE"])
    return f"{scheme}://{netloc}/{quote(name)}"


def _check_broker() -> None:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    except Exception as exc:  # any failure to reach the broker means no worker test
        skip_or_fail(f"Celery broker {celery_app.conf.broker_url!r} is unreachable: {exc!r}")


def _declare_and_purge(queue_name: str) -> None:
    queue = celery_app.amqp.queues[queue_name]  # created on first use, as the router does
    with celery_app.connection_for_write() as connection:
        bound = queue.bind(connection.default_channel)
        bound.declare()
        bound.purge()


def _delete_queue(queue_name: str) -> None:
    queue = celery_app.amqp.queues.pop(queue_name)
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        bound = queue.bind(channel)
        bound.declare()  # a connection deletes only the bindings it knows of: its own
        bound.delete()
        # The filesystem transport keeps an exchange's bindings in <control_folder>/<name>
        # .exchange, and this queue's exchange is named after it: drop the emptied table.
        control_folder = getattr(channel, "control_folder", None)
        if isinstance(control_folder, Path):
            (control_folder / f"{queue.exchange.name}.exchange").unlink(missing_ok=True)


def _worker_id(request) -> str:
    """The xdist worker id ("gw0"...) or "main": one stable node name per test process.

    Stable because the filesystem transport never forgets a node's remote-control binding.
    """
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture
def celery_worker_process(request, transactional_db, smtp_sink, tmp_path):
    """A running Celery worker that consumes this test's tasks and mails `smtp_sink`."""
    _check_broker()

    queue = f"credportal-test-{uuid.uuid4().hex[:12]}"
    worker = CeleryWorkerProcess(
        queue=queue,
        nodename=f"credportal-test-{_worker_id(request)}@localhost",
        log_path=tmp_path / "celery-worker.log",
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "TESTING": "true",
            "DEBUG": "true",
            "EMAIL_URL": smtp_sink.url,
            "SITE_URL": "http://testserver",
            "PYTHONUNBUFFERED": "1",
        },
    )

    # Route every task this process publishes to the test's own queue (the router reads the
    # default queue on each send). The queue is new, so nothing stale can be waiting in it;
    # it is declared and purged anyway before the worker starts, and deleted afterwards.
    previous_default_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    request.node.stash[_worker_key] = worker
    try:
        _declare_and_purge(queue)
        worker.start()
        try:
            worker.wait_until_ready()
        except (RuntimeError, TimeoutError) as exc:
            skip_or_fail(f"{exc}; worker log:\n{worker.log()}")
        yield worker
    finally:
        returncode = worker.stop()
        celery_app.conf.task_default_queue = previous_default_queue
        _delete_queue(queue)
    if returncode not in (None, 0):
        pytest.fail(f"celery worker exited with status {returncode}; log:\n{worker.log()}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Show the worker's log under a failed test's report."""
    report = yield
    worker = item.stash.get(_worker_key, None)
    if worker is not None and report.failed:
        report.sections.append((f"celery worker log ({worker.log_path})", worker.log()))
    return report
