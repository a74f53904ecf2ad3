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

For fault tests (tests/notifications/test_reliability.py), `celery_workers` starts any number
of workers on the test's queue, each with extra environment (NOTIFICATION_CLAIM_TIMEOUT...);
a worker can be SIGKILLed (`kill()`) and started again (`restart()`), and one that was
killed does not fail the test. `private_broker` runs a redis-server of the test's own (see
tests/redis_server.py) and points this process's Celery app at it; request it before
`celery_workers` so that the workers use it and are stopped before it is.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connections

from portal.celery import app as celery_app
from portal.celery import solo_worker_command
from tests.conftest import skip_or_fail
from tests.redis_server import RedisServer, RedisUnavailable

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
BROKER_TIMEOUT = 5.0

_workers_key = pytest.StashKey["CeleryWorkers"]()


class CeleryWorkerProcess:
    """A started `celery worker` subprocess whose output goes to `log_path`."""

    def __init__(self, *, queue: str, nodename: str, log_path: Path, env: dict[str, str]):
        self.queue = queue
        self.nodename = nodename
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None
        self.killed = False  # the last run ended with kill(), on purpose
        self.starts = 0
        self._log_offset = 0  # where the current run's output begins in the log

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the worker; after a kill or stop, start it again (its log goes on)."""
        command = solo_worker_command(f"--hostname={self.nodename}", f"--queues={self.queue}")
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.killed = False
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self, *, current_run: bool = False) -> str:
        """The whole log (every run), or only the output of the current run."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        return data[self._log_offset if current_run else 0 :].decode(errors="replace")

    def wait_for_log(
        self, pattern: str, timeout: float, *, count: int = 1, current_run: bool = False
    ) -> list[re.Match[str]]:
        """The first `count` matches of `pattern` in the log, waiting up to `timeout` seconds.

        Raises RuntimeError if the worker exits first, TimeoutError at the deadline.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            matches = list(regex.finditer(self.log(current_run=current_run)))
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
        self.wait_for_log(rf"{re.escape(self.nodename)} ready\.", timeout, current_run=True)

    def kill(self) -> int | None:
        """SIGKILL, as the OOM killer or a lost host would: no warm shutdown, no ack, no
        cleanup. With --pool=solo the worker process is the one running the task."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            self.killed = True
        return process.wait(STOP_TIMEOUT)

    def restart(self, timeout: float = READY_TIMEOUT) -> None:
        """Stop (warm) if still running, start again with the same environment, wait ready."""
        if self.running:
            self.stop()
        self.start()
        self.wait_until_ready(timeout)

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


class CeleryWorkers:
    """The worker processes of one test: all consume the test's queue and mail `smtp_sink`."""

    def __init__(self, *, request, smtp_sink, tmp_path: Path, queue: str):
        self.request = request
        self.smtp_sink = smtp_sink
        self.tmp_path = tmp_path
        self.queue = queue
        self.workers: list[CeleryWorkerProcess] = []

    def environment(self, broker_url: str | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": worker_database_url(),
            # The broker this process publishes to (the configured one, or `private_broker`).
            "CELERY_BROKER_URL": broker_url or celery_app.conf.broker_write_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "TESTING": "true",
            "DEBUG": "true",
            "EMAIL_URL": self.smtp_sink.url,
            "SITE_URL": "http://testserver",
            "PYTHONUNBUFFERED": "1",
        }

    def start(
        self,
        name: str = "",
        *,
        env: dict[str, str] | None = None,
        broker_url: str | None = None,
        wait: bool = True,
    ) -> CeleryWorkerProcess:
        """Start one more worker (`name` tells its node name and log apart); `env` is added
        to its environment. Waits until it is ready unless `wait` is false."""
        suffix = f"-{name}" if name else ""
        worker = CeleryWorkerProcess(
            queue=self.queue,
            nodename=f"credportal-test-{_worker_id(self.request)}{suffix}@localhost",
            log_path=self.tmp_path / f"celery-worker{suffix}.log",
            env={**self.environment(broker_url), **(env or {})},
        )
        self.workers.append(worker)
        worker.start()
        if wait:
            try:
                worker.wait_until_ready()
            except (RuntimeError, TimeoutError) as exc:
                skip_or_fail(f"{exc}; worker log:\n{worker.log()}")
        return worker

    def stop_all(self) -> list[tuple[CeleryWorkerProcess, int | None]]:
        """Stop every worker; the ones that exited badly without being killed on purpose."""
        failed = []
        for worker in self.workers:
            returncode = worker.stop()
            if returncode not in (None, 0) and not worker.killed:
                failed.append((worker, returncode))
        return failed


@pytest.fixture
def celery_workers(request, transactional_db, smtp_sink, tmp_path):
    """Start Celery workers for this test with `celery_workers.start(...)`; all are stopped
    (SIGTERM, then SIGKILL) before the test database is flushed."""
    _check_broker()

    workers = CeleryWorkers(
        request=request,
        smtp_sink=smtp_sink,
        tmp_path=tmp_path,
        queue=f"credportal-test-{uuid.uuid4().hex[:12]}",
    )
    # Route every task this process publishes to the test's own queue (the router reads the
    # default queue on each send). The queue is new, so nothing stale can be waiting in it;
    # it is declared and purged anyway before the worker starts, and deleted afterwards.
    previous_default_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = workers.queue
    request.node.stash[_workers_key] = workers
    try:
        _declare_and_purge(workers.queue)
        yield workers
    finally:
        failed = workers.stop_all()
        celery_app.conf.task_default_queue = previous_default_queue
        _delete_queue(workers.queue)
    if failed:
        pytest.fail(
            "\n".join(
                f"celery worker {worker.nodename} exited with status {returncode}; "
                f"log:\n{worker.log()}"
                for worker, returncode in failed
            )
        )


@pytest.fixture
def celery_worker_process(celery_workers):
    """A running Celery worker that consumes this test's tasks and mails `smtp_sink`."""
    return celery_workers.start()


# --- a broker of the test's own ----------------------------------------------------------


def _drop_publishing_pools(*, close: bool) -> None:
    """Make this process's next publish take its connection from the pool of the broker URL
    configured then. kombu keeps one pool per URL for the life of the process: the pool of
    the configured broker is only set aside (closing it would empty it for good), a private
    broker's pool, never used again, is closed."""
    amqp = celery_app.__dict__.get("amqp")
    pools = [amqp._producer_pool if amqp is not None else None, celery_app._pool]
    if close:
        for pool in pools:
            if pool is not None:
                pool.force_close_all()
    celery_app._pool = None
    if amqp is not None:
        amqp._producer_pool = None


@contextmanager
def publishing_to(broker_url: str) -> Iterator[None]:
    """Point this process's Celery app at another broker for the duration.

    Sets the read and write URLs: Celery prefers the CELERY_BROKER_URL environment variable
    to `broker_url` in its configuration, but not to these two.
    """
    conf = celery_app.conf
    previous = {key: conf.get(key) for key in ("broker_read_url", "broker_write_url")}
    _drop_publishing_pools(close=False)
    conf.update(broker_read_url=broker_url, broker_write_url=broker_url)
    try:
        yield
    finally:
        _drop_publishing_pools(close=True)
        conf.update(previous)


@pytest.fixture
def private_broker() -> Iterator[RedisServer]:
    """A redis-server of this test's own (killable, restartable on the same port), which
    this process publishes to and `celery_workers` started afterwards consume from."""
    server = RedisServer()
    try:
        server.start()
    except RedisUnavailable as exc:
        server.stop()
        skip_or_fail(f"a private Redis broker could not be started: {exc}")
    try:
        with publishing_to(server.url):
            yield server
    finally:
        server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Show the workers' logs under a failed test's report."""
    report = yield
    workers = item.stash.get(_workers_key, None)
    if workers is not None and report.failed:
        for worker in workers.workers:
            report.sections.append(
                (f"celery worker log {worker.nodename} ({worker.log_path})", worker.log())
            )
    return report
