"""Backups of a whole installation: the database and the credential documents in one archive.

An archive is a tar file, `credportal-<UTC time>.tar` (under var/backups/ unless told
otherwise), holding:
- `manifest.json`: the format, when, which engine, and the row count of every table as of
  the snapshot (a restore compares them);
- the database: `database.sqlite3` (SQLite's online backup API) or `database.pgdump`
  (pg_dump's custom format, compressed);
- `credentials/`: every credential document, when they are kept in a folder
  (`CREDENTIALS_DIR`, var/credentials/ by default). Documents in an S3 bucket are not
  copied: the bucket's versioning is their backup (docs/deploy.md, "Backup and restore").

Not in it, on purpose: var/mail/ (the development mail folder: every message is also an
outbox row), var/broker/ and the beat schedule (queued tasks are re-created by the minute
sweep from the outbox; beat rebuilds its schedule), var/static/ (collectstatic rebuilds it).

Taking one (`backup_create`):
1. snapshot the database, and count every table's rows in that same snapshot;
2. then copy the documents. The portal never changes or deletes a stored document (each
   upload is a new, random name), so documents copied after the snapshot include every one
   a row of it names; one uploaded meanwhile is an orphan that no row shows;
3. write the archive beside its final name, then rename it: a half-written archive never
   looks like a backup.

Restoring one (`backup_restore`):
1. read the manifest: a credportal backup, of the engine DATABASE_URL names;
2. refuse a database that has tables already, unless `force`;
3. documents first, then the database: a document without its row is invisible, while a
   row restored before its document would answer "missing from storage";
4. compare every table's row count with the manifest.
"""

import io
import json
import os
import shutil
import sqlite3
import subprocess  # nosec B404: runs pg_dump and pg_restore with argument lists, never a shell
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection, transaction

from .errors import DomainError
from .models import Firm

FORMAT = "credportal-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = "credentials"
DATABASE_MEMBER = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Backup:
    path: Path
    engine: str
    tables: dict[str, int]
    documents: int
    document_bytes: int
    documents_where: str
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@dataclass(frozen=True)
class Restore:
    archive: Path
    engine: str
    taken_at: str
    tables: dict[str, int]
    documents_written: int
    documents_kept: int
    documents_where: str
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def default_directory() -> Path:
    return Path(settings.VAR_DIR) / "backups"


# --- taking a backup ----------------------------------------------------------------------


def backup_create(*, directory: Path | None = None) -> Backup:
    """Write one consistent archive of the database and the documents (see the module's
    docstring for the steps and why in that order)."""
    started = time.monotonic()
    engine = _engine()
    with connection.cursor() as cursor:
        if not connection.introspection.table_names(cursor):
            raise DomainError(
                f"The database {_database_label()} has no tables: nothing to back up. Is "
                "DATABASE_URL the installation's? Nothing was written."
            )
    directory = Path(directory or default_directory())
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    taken_at = datetime.now(UTC)
    path = directory / f"credportal-{taken_at:%Y%m%d-%H%M%S}Z.tar"
    if path.exists():
        raise DomainError(f"{path} already exists (a backup taken this second); run again.")
    with tempfile.TemporaryDirectory(dir=directory, prefix=".backup-") as work:
        snapshot = Path(work) / DATABASE_MEMBER[engine]
        if engine == "sqlite":
            tables = _snapshot_sqlite(snapshot)
        else:
            tables = _snapshot_postgresql(snapshot)
        folder = _document_folder()
        documents = _documents_in(folder)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "taken_at": taken_at.isoformat(),
            "engine": engine,
            "database": {"member": snapshot.name, "tables": tables},
            "documents": {
                "where": _documents_where(),
                "included": folder is not None,
                "member": f"{DOCUMENTS}/",
                "count": len(documents),
                "bytes": sum(size for _, size in documents),
            },
        }
        _write_archive(path, manifest, snapshot, folder, documents)
    return Backup(
        path=path,
        engine=engine,
        tables=tables,
        documents=len(documents),
        document_bytes=manifest["documents"]["bytes"],
        documents_where=manifest["documents"]["where"],
        seconds=time.monotonic() - started,
    )


def _snapshot_sqlite(destination: Path) -> dict[str, int]:
    """SQLite's online backup API, in one step: every page copied under one read lock, so
    the copy is one state of the database while web, worker and beat go on writing (WAL)."""
    connection.ensure_connection()
    copy = sqlite3.connect(destination)
    try:
        connection.connection.backup(copy)
        # A self-contained file: no -wal beside it to forget.
        copy.execute("PRAGMA journal_mode=DELETE")
        return _sqlite_counts(copy)
    finally:
        copy.close()


def _snapshot_postgresql(destination: Path) -> dict[str, int]:
    """pg_dump's custom format, taken in the snapshot this transaction exports, so the row
    counts read here are of exactly the rows it dumps. pg_dump runs in one REPEATABLE READ
    transaction of its own: the portal keeps running (it only blocks DDL meanwhile)."""
    pg_dump = _tool("pg_dump")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cursor.fetchone()
        _run(
            [
                pg_dump,
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={destination}",
                "--no-password",
            ],
            what="pg_dump",
        )
        return _counts(cursor, connection.introspection.table_names(cursor))


def _write_archive(path: Path, manifest: dict, snapshot: Path, folder, documents) -> None:
    """Written as `<name>.partial` (readable by its owner only: it holds the firms' data),
    then renamed."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file, tarfile.open(fileobj=file, mode="w") as tar:
            body = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(body))
            tar.add(snapshot, arcname=snapshot.name, recursive=False)
            for relative, _size in documents:
                tar.add(folder / relative, arcname=f"{DOCUMENTS}/{relative}", recursive=False)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# --- restoring ----------------------------------------------------------------------------


def backup_restore(*, archive: Path, force: bool = False) -> Restore:
    """Restore `archive` into the configured database and document folder (see the module's
    docstring for the steps). Nothing is changed before every check has passed."""
    started = time.monotonic()
    engine = _engine()
    archive = Path(archive)
    with _open(archive) as tar:
        manifest = _manifest(tar, archive)
        if manifest["engine"] != engine:
            raise DomainError(
                f"{archive.name} is a backup of a {_ENGINE_NAMES[manifest['engine']]} "
                f"database, and this installation uses {_ENGINE_NAMES[engine]}: restore it "
                "with the same engine (DATABASE_URL unset for SQLite). Nothing was changed."
            )
        pg_restore = _tool("pg_restore") if engine == "postgresql" else None
        documents = _document_members(tar)
        folder = _document_folder()
        if documents and folder is None:
            raise DomainError(
                f"{archive.name} holds {len(documents)} documents from a folder, but "
                f"documents now go to {_documents_where()}: copy them there from the "
                f"archive's {DOCUMENTS}/ (keys under the same names), or unset "
                "CREDENTIALS_BUCKET. Nothing was changed."
            )
        documents = _safe_names(documents, folder)
        existing = _refuse_unless_empty(force=force)
        written, kept = _restore_documents(tar, documents, folder, force=force)
        member = tar.extractfile(manifest["database"]["member"])
        if engine == "sqlite":
            _restore_sqlite(member)
        else:
            _restore_postgresql(member, pg_restore, replace=bool(existing))
    expected = manifest["database"]["tables"]
    _check_counts(expected)
    # Cached report figures and rate limits describe the database as it was: start afresh.
    cache.clear()
    return Restore(
        archive=archive,
        engine=engine,
        taken_at=manifest["taken_at"],
        tables=expected,
        documents_written=written,
        documents_kept=kept,
        documents_where=_documents_where(),
        seconds=time.monotonic() - started,
    )


def _open(archive: Path) -> tarfile.TarFile:
    if not archive.is_file():
        raise DomainError(f"No backup file at {archive}.")
    try:
        return tarfile.open(archive, mode="r")
    except tarfile.TarError as exc:
        raise DomainError(
            f"{archive.name} is not a credportal backup (not a tar archive)."
        ) from exc


def _manifest(tar: tarfile.TarFile, archive: Path) -> dict:
    not_ours = f"{archive.name} is not a credportal backup (no readable {MANIFEST})."
    try:
        manifest = json.load(tar.extractfile(MANIFEST))
    except (KeyError, ValueError, AttributeError, tarfile.TarError) as exc:
        raise DomainError(not_ours) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DomainError(not_ours)
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DomainError(
            f"{archive.name} was written by a newer credportal (backup format {version}; "
            f"this one reads {FORMAT_VERSION}). Restore it with that version."
        )
    engine, database = manifest.get("engine"), manifest.get("database") or {}
    member, tables = database.get("member"), database.get("tables")
    if engine not in DATABASE_MEMBER or member != DATABASE_MEMBER[engine]:
        raise DomainError(not_ours)
    if not isinstance(tables, dict) or not all(isinstance(n, int) for n in tables.values()):
        raise DomainError(not_ours)
    try:
        tar.getmember(member)
    except KeyError as exc:
        raise DomainError(f"{archive.name} has no database ({member}): incomplete.") from exc
    return manifest


def _refuse_unless_empty(*, force: bool) -> list[str]:
    """The tables already there. Any table at all counts: even a freshly migrated database
    would be replaced, and the person must have meant it."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    if tables and not force:
        firms = Firm.objects.count() if Firm._meta.db_table in tables else 0
        raise DomainError(
            f"The database {_database_label()} is not empty ({len(tables)} tables, "
            f"{firms} firm{'s' if firms != 1 else ''}). Restoring replaces everything in it: "
            "run again with --force to replace it, or restore into an empty database. "
            "Nothing was changed."
        )
    return tables


def _document_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    prefix = f"{DOCUMENTS}/"
    return [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]


def _safe_names(members: list[tarfile.TarInfo], folder: Path | None) -> list[tarfile.TarInfo]:
    """The documents renamed relative to the folder, each checked by tarfile's "data" filter
    (no absolute path, nothing outside the folder, no link) before anything is written."""
    renamed = [m.replace(name=m.name.removeprefix(f"{DOCUMENTS}/"), deep=False) for m in members]
    try:
        for member in renamed:
            tarfile.data_filter(member, str(folder))
    except tarfile.FilterError as exc:
        raise DomainError(
            f"The archive holds an unsafe document name ({exc}). Nothing was changed."
        ) from exc
    return renamed


def _restore_documents(tar, members, folder: Path | None, *, force: bool) -> tuple[int, int]:
    """(written, kept). A document already in the folder under its name is the same upload
    (names are random and never reused) and is kept, unless `force`."""
    if not members:
        return 0, 0
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = kept = 0
    for member in members:
        target = folder / member.name
        if target.exists() and not force:
            kept += 1
            continue
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tar.extract(member, path=folder, filter="data")
        written += 1
    return written, kept


def _restore_sqlite(member: IO[bytes]) -> None:
    """The archived file is copied into the database with the online backup API (not moved
    over it), so a process that still has the file open sees the restored pages, not a
    deleted file."""
    target = Path(connection.settings_dict["NAME"])
    connection.close()
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".restore-", delete=False) as copy:
        shutil.copyfileobj(member, copy, CHUNK)
    source = sqlite3.connect(copy.name)
    destination = sqlite3.connect(target, timeout=20)
    try:
        source.backup(destination)
    except sqlite3.DatabaseError as exc:  # a damaged or cut-short copy: nothing was written
        raise DomainError(f"The backup's database could not be read ({exc}).") from None
    finally:
        destination.close()
        source.close()
        Path(copy.name).unlink()


def _restore_postgresql(member: IO[bytes], pg_restore: str, *, replace: bool) -> None:
    """pg_restore in one transaction (a failure leaves the database as it was), fed from the
    archive without unpacking it. Replacing (--force) drops each object of the dump inside
    that same transaction (`--clean`), so a dump that cannot be read (a newer pg_dump's, a
    truncated copy) changes nothing: dropping the schema first, in a transaction of its own,
    lost the database when the restore then failed."""
    connection.close()
    _run(
        [
            pg_restore,
            f"--dbname={connection.settings_dict['NAME']}",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            *(["--clean", "--if-exists"] if replace else []),
            "--no-password",
        ],
        what="pg_restore",
        source=member,
    )


def _check_counts(expected: dict[str, int]) -> None:
    with connection.cursor() as cursor:
        present = set(connection.introspection.table_names(cursor))
        missing = sorted(set(expected) - present)
        got = _counts(cursor, [table for table in expected if table in present])
    differ = [
        f"{table}: {got[table]:,} rows, {rows:,} in the backup"
        for table, rows in sorted(expected.items())
        if table in got and got[table] != rows
    ]
    if missing or differ:
        raise DomainError(
            "The restore finished, but the database does not match the backup: "
            + "; ".join([f"{table}: missing" for table in missing] + differ)
        )


# --- shared -------------------------------------------------------------------------------

_ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _engine() -> str:
    if connection.vendor not in DATABASE_MEMBER:
        raise DomainError(
            f"Backups cover SQLite and PostgreSQL; this database is {connection.vendor}."
        )
    return connection.vendor


def _database_label() -> str:
    name = str(connection.settings_dict["NAME"])
    return Path(name).name if connection.vendor == "sqlite" else name


def _document_folder() -> Path | None:
    """Where credential documents are kept, when it is a folder (else an object store)."""
    storage = storages["credentials"]
    return Path(storage.location) if isinstance(storage, FileSystemStorage) else None


def _documents_where() -> str:
    storage = storages["credentials"]
    if isinstance(storage, FileSystemStorage):
        return f"folder {storage.location}"
    return f"bucket {getattr(storage, 'bucket_name', '') or type(storage).__name__}"


def _documents_in(folder: Path | None) -> list[tuple[str, int]]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(
        (path.relative_to(folder).as_posix(), path.stat().st_size)
        for path in folder.rglob("*")
        if path.is_file()
    )


def _counts(cursor, tables) -> dict[str, int]:
    quote = connection.ops.quote_name
    counts = {}
    for table in sorted(tables):
        # A name from the database's own catalogue, quoted; no value is formatted in.
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608  # nosec B608
        counts[table] = cursor.fetchone()[0]
    return counts


def _sqlite_counts(database: sqlite3.Connection) -> dict[str, int]:
    tables = [
        name
        for (name,) in database.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return _counts(database.cursor(), tables)


def _tool(name: str) -> str:
    """The full path of a PostgreSQL client program, or a message saying how to get it."""
    path = shutil.which(name)
    if path is None:
        major = connection.pg_version // 10000 if connection.vendor == "postgresql" else ""
        raise DomainError(
            f"{name} was not found on PATH. Install PostgreSQL's client programs, version "
            f"{major} or newer (Debian: apt-get install postgresql-client-{major}), and run "
            "again. Nothing was changed."
        )
    return path


def _pg_environment() -> dict[str, str]:
    """libpq's variables for pg_dump and pg_restore: the password never appears in a command
    line (which every user of the machine can read)."""
    database = connection.settings_dict
    environment = dict(os.environ)
    for variable, value in (
        ("PGHOST", database["HOST"]),
        ("PGPORT", database["PORT"]),
        ("PGUSER", database["USER"]),
        ("PGPASSWORD", database["PASSWORD"]),
        ("PGDATABASE", database["NAME"]),
    ):
        if value:
            environment[variable] = str(value)
    options = database.get("OPTIONS", {})
    for option in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if options.get(option):
            environment[f"PG{option.upper()}"] = str(options[option])
    return environment


def _run(command: list[str], *, what: str, source: IO[bytes] | None = None) -> None:
    """Run a PostgreSQL client program (arguments as a list, the full path of the program),
    feeding it `source` on its standard input; its own message if it fails."""
    with tempfile.TemporaryFile() as errors:
        # A PostgreSQL program by its full path, with fixed options (bandit B603, ruff S603).
        process = subprocess.Popen(  # noqa: S603  # nosec B603
            command,
            stdin=subprocess.PIPE if source is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=_pg_environment(),
        )
        if source is not None:
            try:
                shutil.copyfileobj(source, process.stdin, CHUNK)
            except BrokenPipeError:
                pass  # it stopped reading: its exit status and message say why
            finally:
                process.stdin.close()
        status = process.wait()
        if status != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()[-2000:]
            raise DomainError(f"{what} failed (exit status {status}): {message}")
