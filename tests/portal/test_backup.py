"""Backup and restore (issue 12): a seeded installation is backed up, wiped and restored, and
every table's rows, a few values and every document come back; bad archives and missing
tools get a clear message and change nothing.

The round trip runs the commands in subprocesses, as an operator does, on an installation of
its own: SQLite in a temporary VAR_DIR, and PostgreSQL in a scratch database created and
dropped by the test (pg_dump and pg_restore must be installed: CI fails without them).
"""

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import sql

from clients.models import Client
from notifications.models import Notification
from portal.backup import DATABASE_MEMBER, FORMAT, FORMAT_VERSION
from portal.models import AuditEvent, Firm
from tests.conftest import skip_or_fail
from workflows.models import CredentialFile

BASE_DIR = Path(settings.BASE_DIR)

# What the demo seeder writes, so a restore that lost a table's rows cannot pass unnoticed.
SEEDED = [
    Firm,
    Client,
    CredentialFile,
    Notification,
    AuditEvent,
    *(apps.get_model(label) for label in ("clients.Profile", "workflows.SignatureRound")),
]
# A few values, compared row by row before and after: (model, columns, order).
SAMPLES = [
    (Firm, "slug, name, time_zone", "slug"),
    (Client, "public_id, npi, email, last_name", "public_id"),
    (CredentialFile, "file, sha256, size", "file"),
    (Notification, "idempotency_key, state, due_at", "idempotency_key"),
]


def sample_query(model, columns: str, order: str) -> str:
    return f"SELECT {columns} FROM {model._meta.db_table} ORDER BY {order}"  # noqa: S608


class Installation:
    """One credportal installation driven by manage.py in subprocesses."""

    def __init__(self, var_dir: Path, environment: dict[str, str]):
        self.var_dir = var_dir
        self.environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DATABASE_URL", "CELERY_", "EMAIL_URL", "CACHE_URL"))
            and not name.startswith("CREDENTIALS_")
        }
        # Every setting that could reach another installation is given (a developer's .env
        # never wins over the environment): the test's own database, folder, broker and mail.
        self.environment.update(
            {
                "DEBUG": "true",
                "VAR_DIR": str(var_dir),
                "DATABASE_URL": f"sqlite:///{var_dir / 'credportal.sqlite3'}",
                "CELERY_BROKER_URL": "filesystem://localhost//",
                "EMAIL_URL": f"filemail://{var_dir / 'mail'}",
                "CACHE_URL": "locmemcache://backup-test",
                "CREDENTIALS_BUCKET": "",
                "CREDENTIALS_DIR": str(var_dir / "credentials"),
                **environment,
            }
        )

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def must(self, *args: str) -> str:
        result = self.manage(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def documents(self) -> dict[str, str]:
        """Every stored document's SHA-256, by its name in storage."""
        folder = self.var_dir / "credentials"
        return {
            path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in folder.rglob("*")
            if path.is_file()
        }


class SQLiteInstallation(Installation):
    engine = "sqlite"

    def __init__(self, var_dir: Path):
        super().__init__(var_dir, {})
        self.path = var_dir / "credportal.sqlite3"

    def query(self, statement: str) -> list[tuple]:
        with sqlite3.connect(self.path) as database:
            return database.execute(statement).fetchall()

    def execute(self, statement: str) -> None:
        with sqlite3.connect(self.path) as database:
            database.execute(statement)

    def tables(self) -> list[str]:
        rows = self.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return [name for (name,) in rows]

    def wipe(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


class PostgreSQLInstallation(Installation):
    engine = "postgresql"

    def __init__(self, var_dir: Path, server: dict, name: str):
        self.server, self.name = server, name
        super().__init__(var_dir, {"DATABASE_URL": self._url(name)})

    def _url(self, name: str) -> str:
        auth = self.server["USER"] or "postgres"
        if self.server["PASSWORD"]:
            auth += f":{self.server['PASSWORD']}"
        host = self.server["HOST"] or "127.0.0.1"
        return f"postgres://{auth}@{host}:{self.server['PORT'] or 5432}/{name}"

    def _admin(self, *statements) -> None:
        with psycopg.connect(self._url("postgres"), autocommit=True) as server:
            for statement in statements:
                server.execute(statement)

    def create(self, template: str = "template1") -> None:
        self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(self.name), sql.Identifier(template)
            )
        )

    def drop(self) -> None:
        self._admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
        )

    def wipe(self) -> None:
        self.drop()
        self.create()

    def query(self, statement: str) -> list[tuple]:
        with psycopg.connect(self._url(self.name)) as database:
            return database.execute(statement).fetchall()

    def execute(self, statement: str) -> None:
        with psycopg.connect(self._url(self.name)) as database:
            database.execute(statement)

    def tables(self) -> list[str]:
        rows = self.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        return [name for (name,) in rows]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request, tmp_path_factory):
    """A migrated installation holding the demo data, made once per engine and copied for
    each test (seeding takes seconds)."""
    var_dir = tmp_path_factory.mktemp(f"seeded-{request.param}")
    if request.param == "sqlite":
        template = SQLiteInstallation(var_dir)
    else:
        server = settings.DATABASES["default"]
        if server["ENGINE"] != "django.db.backends.postgresql":
            skip_or_fail("the PostgreSQL round trip needs DATABASE_URL to name a PostgreSQL server")
        if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
            skip_or_fail("the PostgreSQL round trip needs pg_dump and pg_restore on PATH")
        template = PostgreSQLInstallation(var_dir, server, scratch_name(server))
        template.create()
    try:
        template.must("migrate", "--noinput", "-v0")
        template.must("seed_demo")
        yield template
    finally:
        if request.param == "postgresql":
            template.drop()


def scratch_name(server) -> str:
    return f"{server['NAME'][:40]}_restore_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def installation(seeded, tmp_path):
    """A copy of the seeded installation of its own: its var/ folder, and for PostgreSQL a
    database created from the seeded one."""
    var_dir = tmp_path / "var"
    shutil.copytree(seeded.var_dir, var_dir)
    if seeded.engine == "sqlite":
        yield SQLiteInstallation(var_dir)
        return
    copy = PostgreSQLInstallation(var_dir, seeded.server, scratch_name(seeded.server))
    copy.create(template=seeded.name)
    try:
        yield copy
    finally:
        copy.drop()


def counts(installation) -> dict[str, int]:
    return {
        table: installation.query(f'SELECT COUNT(*) FROM "{table}"')[0][0]  # noqa: S608
        for table in installation.tables()
    }


def samples(installation) -> list[list[tuple]]:
    return [installation.query(sample_query(*sample)) for sample in SAMPLES]


def test_a_seeded_installation_comes_back_whole_after_a_wipe(installation):
    before, values, documents = (
        counts(installation),
        samples(installation),
        installation.documents(),
    )
    for model in SEEDED:
        assert before[model._meta.db_table] > 0, model
    assert documents, "the demo stores documents"
    every_model = {model._meta.db_table for model in apps.get_models(include_auto_created=True)}
    assert every_model <= set(before)

    output = installation.must("backup")
    (archive,) = (installation.var_dir / "backups").glob("credportal-*.tar")
    assert f"Backup written to {archive}" in output
    assert oct(archive.stat().st_mode & 0o777) == "0o600"

    installation.wipe()
    shutil.rmtree(installation.var_dir / "credentials")
    assert installation.tables() == []

    output = installation.must("restore", str(archive))
    assert "every table's row count matches the backup" in output
    assert f"{len(documents)} written" in output
    assert counts(installation) == before
    assert samples(installation) == values
    assert installation.documents() == documents
    stored = {name: digest for name, digest, _size in values[2]}
    assert stored == documents, "each row's SHA-256 is its restored document's"


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(installation):
    before = counts(installation)
    installation.must("backup")
    (archive,) = (installation.var_dir / "backups").glob("credportal-*.tar")
    table = Notification._meta.db_table
    installation.execute(f"DELETE FROM {table} WHERE id = (SELECT MIN(id) FROM {table})")  # noqa: S608
    changed = counts(installation)
    assert changed[table] == before[table] - 1

    refused = installation.manage("restore", str(archive))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert "--force" in refused.stderr
    assert "Nothing was changed." in refused.stderr
    assert counts(installation) == changed

    output = installation.must("restore", "--force", str(archive))
    assert "every table's row count matches the backup" in output
    assert counts(installation) == before


def test_a_forced_restore_of_a_dump_that_cannot_be_read_changes_nothing(installation):
    """Review of the backup change: `--force` dropped the schema in a transaction of its own,
    then pg_restore failed on the dump (a newer pg_dump's, a truncated copy) and the database
    was gone. The drop is now inside the restore's one transaction."""
    before = counts(installation)
    installation.must("backup")
    (archive,) = (installation.var_dir / "backups").glob("credportal-*.tar")
    broken = installation.var_dir / "broken.tar"
    with tarfile.open(archive) as source, tarfile.open(broken, "w") as target:
        for info in source.getmembers():
            data = source.extractfile(info).read() if info.isfile() else None
            if info.name == DATABASE_MEMBER[installation.engine]:
                data = data[: len(data) // 2]  # a copy cut short
                info.size = len(data)
            target.addfile(info, io.BytesIO(data) if data is not None else None)

    failed = installation.manage("restore", "--force", str(broken))
    assert failed.returncode != 0
    assert counts(installation) == before


# --- what is refused, with a message, before anything changes ------------------------------


def archive_with(tmp_path, *, manifest=None, members=(), database=True) -> Path:
    engine = connection.vendor
    manifest = manifest or {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "taken_at": "2026-12-04T10:00:00+00:00",
        "engine": engine,
        "database": {"member": DATABASE_MEMBER[engine], "tables": {}},
    }
    path = tmp_path / "credportal-test.tar"
    with tarfile.open(path, "w") as tar:
        contents = [("manifest.json", json.dumps(manifest).encode())] if manifest != "none" else []
        if database:
            member = manifest.get("database", {}).get("member") if manifest != "none" else None
            contents.append((member or DATABASE_MEMBER[engine], b"not restored"))
        for name, data in [*contents, *members]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def other_engine() -> str:
    return "sqlite" if connection.vendor == "postgresql" else "postgresql"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda tmp: tmp / "missing.tar", "No backup file at"),
        (
            lambda tmp: (tmp / "notes.tar").write_text("hello") and tmp / "notes.tar",
            "is not a credportal backup (not a tar archive)",
        ),
        (lambda tmp: archive_with(tmp, manifest="none"), "no readable manifest.json"),
        (
            lambda tmp: archive_with(tmp, manifest={"format": "something else"}),
            "no readable manifest.json",
        ),
        (
            lambda tmp: archive_with(
                tmp,
                manifest={
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION + 1,
                    "engine": connection.vendor,
                },
            ),
            "was written by a newer credportal",
        ),
        (lambda tmp: archive_with(tmp, database=False), "has no database"),
        (
            lambda tmp: archive_with(
                tmp,
                manifest={
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "taken_at": "2026-12-04T10:00:00+00:00",
                    "engine": other_engine(),
                    "database": {"member": DATABASE_MEMBER[other_engine()], "tables": {}},
                },
            ),
            "restore it with the same engine",
        ),
        (
            lambda tmp: archive_with(tmp, members=[("credentials/../../escaped.pdf", b"%PDF")]),
            "unsafe document name",
        ),
    ],
    ids=[
        "missing",
        "not-a-tar",
        "no-manifest",
        "another-format",
        "newer-format",
        "no-database",
        "other-engine",
        "path-outside-the-folder",
    ],
)
def test_a_bad_archive_is_refused_with_a_clear_message(tmp_path, build, message):
    with pytest.raises(CommandError, match=re.escape(message)) as refused:
        call_command("restore", str(build(tmp_path)), "--force")
    assert "Traceback" not in str(refused.value)
    assert not (tmp_path.parent / "escaped.pdf").exists()


@pytest.mark.django_db
def test_backup_says_how_to_get_pg_dump_when_it_is_missing(tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        skip_or_fail("needs DATABASE_URL to name a PostgreSQL server")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CommandError, match=r"pg_dump was not found on PATH\. Install"):
        call_command("backup", "--directory", str(tmp_path / "backups"))
    assert list((tmp_path / "backups").iterdir()) == []


def test_backup_of_a_database_without_tables_is_refused(tmp_path):
    empty = SQLiteInstallation(tmp_path)
    refused = empty.manage("backup")
    assert refused.returncode == 1
    assert "has no tables: nothing to back up" in refused.stderr
    assert not (tmp_path / "backups").exists()
