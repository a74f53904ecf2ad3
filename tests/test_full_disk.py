"""A full disk on `var/` (issue 12): the SQLite default, uploaded files, mail files, the
filesystem broker and beat's schedule. The portal says so, and loses nothing committed.

The disk is filled by injecting what the operating system answers then: OSError(ENOSPC)
from the write (SQLite's own "database or disk is full" comes from a database kept under
its size limit, a real SQLITE_FULL), and, for beat's schedule file, real writes refused by
the kernel in a process that is then killed.
"""

import dbm.sqlite3
import errno
import logging
import os
import shelve
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.mail.backends import filebased
from django.db import OperationalError
from django.test import Client, override_settings
from django.urls import path, reverse
from django.utils import timezone
from kombu import Connection
from kombu.exceptions import ChannelError

from notifications import delivery
from notifications.models import Notification
from notifications.outbox import Message, schedule
from portal.beat import Scheduler
from portal.celery import app as celery_app
from portal.urls import urlpatterns as portal_urlpatterns
from tests.workflows.documents import phone_photo
from tests.workflows.test_credentials import requested
from workflows.models import Credential, CredentialFile

pytestmark = pytest.mark.django_db


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- a request on a full disk: a 507 page that tells the truth --------------------------


def sqlite_full() -> sqlite3.OperationalError:
    """SQLite's own error for a full disk: a database kept to one page, written past it."""
    database = sqlite3.connect(":memory:")
    database.execute("PRAGMA max_page_count = 1")
    try:
        database.execute("CREATE TABLE t (x)")
        database.execute("INSERT INTO t VALUES (zeroblob(100000))")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        database.close()
    raise AssertionError("SQLite accepted a write past its size limit")


def file_write_fails(request):
    no_space()


def sqlite_write_fails(request):
    # As Django's database wrapper raises it: its OperationalError, from SQLite's.
    raise OperationalError(*sqlite_full().args) from sqlite_full()


def postgres_write_fails(request):
    error = psycopg.errors.DiskFull("could not extend file: No space left on device")
    raise OperationalError(*error.args) from error


def database_down(request):
    raise OperationalError("connection to server failed")


urlpatterns = [
    *portal_urlpatterns,
    path("full/file/", file_write_fails),
    path("full/sqlite/", sqlite_write_fails),
    path("full/postgres/", postgres_write_fails),
    path("down/", database_down),
]
handler500 = "portal.views.server_error"  # as in portal/urls.py


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
@pytest.mark.parametrize("where", ["file", "sqlite", "postgres"])
def test_a_full_disk_during_a_request_is_a_507_that_tells_the_truth(where):
    assert sqlite_full().sqlite_errorcode == sqlite3.SQLITE_FULL
    response = Client(raise_request_exception=False).post(f"/full/{where}/")
    assert response.status_code == 507
    assert response["Retry-After"] == "300"
    text = response.content.decode()
    assert "The server&#x27;s disk is full" in text or "The server's disk is full" in text
    assert "could not confirm your change" in text
    assert "not saved" not in text  # it may have been: the page does not say it was not


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_lost_database_is_still_the_503_not_the_full_disk_page():
    response = Client(raise_request_exception=False).get("/down/")
    assert response.status_code == 503
    assert "disk is full" not in response.content.decode()


# --- an upload on a full disk: a clear error on the form, nothing changed ---------------


def test_an_upload_on_a_full_disk_says_so_and_changes_nothing(
    as_user, rivera, northwind_staff, monkeypatch
):
    credential = requested(rivera, northwind_staff)
    written = []

    def half_written_then_full(storage, name, content):
        target = Path(storage.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.read(100))  # what fit before the disk filled up
        written.append(target)
        no_space()

    monkeypatch.setattr(FileSystemStorage, "_save", half_written_then_full)
    response = as_user(rivera.user).post(
        reverse("todo_upload", args=[credential.public_id]),
        {"document": phone_photo()},
        follow=True,
    )
    assert response.status_code == 200
    assert b"disk is full, so the document was not saved and nothing changed" in response.content
    credential.refresh_from_db()
    assert credential.state == Credential.State.REQUESTED
    assert not CredentialFile.objects.exists()
    assert len(written) == 1
    assert not written[0].exists()  # the part that was written gave its space back


# --- mail files on a full disk: the row waits, no attempt spent ---------------------------


def test_a_mail_file_that_cannot_be_written_keeps_its_row_and_its_attempts(
    northwind, settings, tmp_path, monkeypatch
):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(tmp_path / "mail")},
        }
    }
    monkeypatch.setattr(delivery, "_outage", {"since": None})  # this test's own
    schedule(
        [
            Message(
                firm=northwind,
                kind="test.reminder",
                subject_type="test",
                subject_id="1",
                step="day-3",
                due_at=timezone.now(),
                template="notification",
                to_email="provider@clinic.test",
                context={"subject": "Reminder", "headline": "Reminder", "lines": []},
                channels=(Notification.Channel.EMAIL,),
            )
        ]
    )
    with monkeypatch.context() as full:
        full.setattr(filebased.EmailBackend, "write_message", no_space)
        delivery.deliver_due()
    row = Notification.objects.get(kind="test.reminder")
    assert row.state == Notification.State.SCHEDULED
    assert row.attempts == 0  # the disk failed, not the message
    assert "No space left on device" in row.last_error
    assert row.due_at > timezone.now()

    Notification.objects.filter(pk=row.pk).update(due_at=timezone.now())  # room again, later
    delivery.deliver_due()
    row.refresh_from_db()
    assert row.state == Notification.State.SENT
    files = [file.read_text() for file in (tmp_path / "mail").iterdir()]
    assert [row.message_id in text for text in files].count(True) == 1


# --- the filesystem broker on a full disk -----------------------------------------------


@pytest.fixture
def filesystem_broker(tmp_path):
    folders = {name: tmp_path / name for name in ("messages", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {
        "data_folder_in": str(folders["messages"]),
        "data_folder_out": str(folders["messages"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
    with Connection(
        "filesystem://", transport="portal.broker:Transport", transport_options=options
    ) as connection:
        yield connection, folders["messages"]


def test_the_default_setup_uses_the_broker_and_beat_that_survive_a_full_disk(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from portal.celery import app; "
            "print(app.conf.broker_transport, app.conf.beat_scheduler, "
            "app.connection_for_write().transport_cls)",
        ],
        cwd=settings.BASE_DIR,
        env={
            **env,
            "DEBUG": "true",
            "VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == [
        "portal.broker:Transport",
        "portal.beat:Scheduler",
        "portal.broker:Transport",
    ], result.stderr


def test_a_broker_message_that_does_not_fit_leaves_no_file_behind(filesystem_broker, monkeypatch):
    connection, messages = filesystem_broker
    queue = connection.SimpleQueue("full")

    class HalfWritten:
        def __init__(self, path, *args, **kwargs):
            self.file = open(path, "wb")  # noqa: SIM115  (closed in __exit__)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.file.close()

        def write(self, data):
            self.file.write(data[:10])
            no_space()

    monkeypatch.setattr("portal.broker.open", HalfWritten, raising=False)
    with pytest.raises(ChannelError):
        queue.put({"task": "lost"})
    monkeypatch.undo()
    assert list(messages.iterdir()) == []  # no cut-short message for a worker to choke on
    queue.put({"task": "fits"})
    assert queue.get(timeout=1).payload == {"task": "fits"}


def test_a_cut_short_broker_message_is_skipped_not_fatal(filesystem_broker, caplog):
    connection, messages = filesystem_broker
    # (a queue name of its own: kombu remembers declarations per process, not per folder)
    queue = connection.SimpleQueue("cut")
    # "!" sorts before the digits every real message name starts with: these are read first
    (messages / "!0_a.cut.msg").write_bytes(b"")
    (messages / "!1_b.cut.msg").write_bytes(b'{"body": "eyJ0')
    queue.put({"task": "next"})
    with caplog.at_level(logging.ERROR, logger="portal.broker"):
        assert queue.get(timeout=1).payload == {"task": "next"}
    assert caplog.text.count("could not be decoded; skipped") == 2


def test_broker_messages_are_read_in_the_order_they_were_sent_across_a_digit_boundary(
    filesystem_broker, monkeypatch
):
    """Message files are read in the order of their names. Named by the monotonic clock's
    milliseconds unpadded, a message sent at 999 ms was read after one sent at 1000 ms (and
    a test of skipped files failed on a machine up for between 1,000 and 1,999 seconds)."""
    connection, _messages = filesystem_broker
    queue = connection.SimpleQueue("order")
    clock = iter([0.999, 1.000])
    monkeypatch.setattr("portal.broker.monotonic", lambda: next(clock))
    queue.put({"task": "first"})
    queue.put({"task": "second"})
    assert [queue.get(timeout=1).payload["task"] for _ in range(2)] == ["first", "second"]


# --- beat's schedule file on a full disk ---------------------------------------------------

ENTRY = "deliver-due-notifications"


def beat_scheduler(path: Path) -> Scheduler:
    return Scheduler(app=celery_app, schedule_filename=str(path), lazy=False)


def saved_last_run(path: Path) -> datetime:
    with shelve.open(str(path), flag="r") as store:  # noqa: S301  (the test's own file)
        return store["entries"][ENTRY].last_run_at


def test_beat_goes_on_when_its_schedule_cannot_be_saved_and_saves_it_when_there_is_room(
    tmp_path, monkeypatch, caplog
):
    path = tmp_path / "celerybeat-schedule"
    scheduler = beat_scheduler(path)
    first = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    scheduler.schedule[ENTRY].last_run_at = first
    scheduler.sync()
    assert saved_last_run(path) == first

    later = first + timedelta(minutes=5)
    with monkeypatch.context() as full, caplog.at_level(logging.ERROR, logger="portal.beat"):
        full.setattr(dbm.sqlite3._Database, "__setitem__", no_space)
        scheduler.schedule[ENTRY].last_run_at = later
        scheduler.sync()  # Celery's own scheduler raises here, and beat ends
        scheduler.sync()
        assert scheduler.schedule[ENTRY].last_run_at == later  # beat's memory goes on
    assert caplog.text.count("could not save the schedule file") == 1
    assert saved_last_run(path) == first  # the last complete state

    scheduler.sync()  # room again: shelve would no longer write; this one does
    assert saved_last_run(path) == later
    scheduler.close()


def test_beat_starts_from_memory_when_its_schedule_file_cannot_be_created(
    tmp_path, monkeypatch, caplog
):
    def cannot_create(self, path, /, *, flag, mode):
        raise dbm.sqlite3.error("database or disk is full")

    monkeypatch.setattr(dbm.sqlite3._Database, "__init__", cannot_create)
    with caplog.at_level(logging.ERROR, logger="portal.beat"):
        scheduler = beat_scheduler(tmp_path / "celerybeat-schedule")
    assert "running from memory" in caplog.text
    assert set(settings.CELERY_BEAT_SCHEDULE) <= set(scheduler.schedule)
    scheduler.sync()
    scheduler.close()


CRASH_ON_A_FULL_DISK = """
import logging, os, resource, signal, sys
from datetime import datetime, timedelta, UTC
from portal.beat import Scheduler
from portal.celery import app

logging.basicConfig()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write fails, as ENOSPC does
scheduler = Scheduler(app=app, schedule_filename=sys.argv[1], lazy=False)
first = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
scheduler.schedule["deliver-due-notifications"].last_run_at = first
scheduler.sync()
_soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))  # from now on no file may grow
for minutes in range(1, 4):
    # (read again after each sync: shelve hands out a fresh copy once it has saved)
    scheduler.schedule["deliver-due-notifications"].last_run_at = first + timedelta(minutes=minutes)
    scheduler.sync()
assert scheduler._save_failing
print("synced on a full disk", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # and the machine goes down before there is room
"""


def test_a_full_disk_and_a_crash_leave_beats_schedule_file_whole(tmp_path):
    path = tmp_path / "celerybeat-schedule"
    run = subprocess.run(
        [sys.executable, "-c", CRASH_ON_A_FULL_DISK, str(path)],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DEBUG": "true", "VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == -9, run.stderr
    assert "synced on a full disk" in run.stdout
    assert "could not save the schedule file" in run.stderr
    with sqlite3.connect(path) as database:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert saved_last_run(path) == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    beat_scheduler(path).close()  # and beat starts from it
