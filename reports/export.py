"""Everything of one firm, for the firm to take with it: a ZIP of CSV files and a manifest.

One CSV per kind of record, with every column of its model (a column added to a model is
exported without touching this file), related rows named by their public id, people by their
email. Each file is one query read in chunks, so the export makes the same number of queries
for 10 clients as for 30,000 and holds one chunk in memory; the ZIP is written as it goes
(zipfile writes to a stream that cannot seek) and handed to the response piece by piece.

Left out, and why:
- the documents themselves. `credential_files.csv` lists each with its stored name, size and
  SHA-256 (recorded at upload, so free). Fetching them from the bucket inside one request
  would outlast any web timeout for a firm with years of documents; each stays downloadable
  from its credential, and the operator can hand over the firm's folder of the storage
  (`<firm public id>/`), which the checksums verify (docs/deploy.md);
- what opens a door rather than records a fact: calendar feed tokens, sign-in links,
  invitation nonces, notification claim tokens, and the bodies of emails (a provider's email
  carries a one-tap sign-in link that works for a day).
"""

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import connection, models, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from clients.models import Client, Delegate, DelegateRole, Official, Organization, Profile
from notifications.models import BouncingAddress, Notification, SignInLink
from portal.models import AuditEvent, Firm, Invitation, Membership, User
from workflows.models import (
    AccessGrant,
    CalendarFeed,
    Credential,
    CredentialFile,
    CredentialKind,
    DevelopmentRequest,
    Enrollment,
    OpenStep,
    SignatureRound,
    Signer,
)

FORMAT = "credportal-firm-export"
FORMAT_VERSION = 1
# Rows fetched per round trip, and bytes of ZIP handed to the response at a time.
CHUNK_ROWS = 2000
FLUSH_BYTES = 64 * 1024
# What a spreadsheet would run as a formula: such a text starts with an apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Sheet:
    """One CSV file: the rows of `model` that belong to the firm (through `firm_path`)."""

    name: str
    model: type[models.Model]
    about: str
    firm_path: str = "firm"
    where: dict = field(default_factory=dict)
    only: tuple[str, ...] = ()
    leave_out: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    def fields(self) -> list[models.Field]:
        has_public_id = _has_public_id(self.model)
        return [
            f
            for f in self.model._meta.concrete_fields
            if (not self.only or f.name in self.only)
            and f.name not in self.leave_out
            and not (f.name == "id" and has_public_id)
            and f.related_model is not Firm
        ]

    def columns(self) -> list[tuple[str, str]]:
        """(header, lookup): a related row by its public id, a person by their email."""
        columns = []
        for f in self.fields():
            if f.related_model is User:
                columns.append((f"{f.name}_email", f"{f.name}__email"))
            elif f.is_relation:
                key = "public_id" if _has_public_id(f.related_model) else "id"
                columns.append((f"{f.name}_{key}", f"{f.name}__{key}"))
            else:
                columns.append((f.name, f.name))
        return columns + list(self.extra)

    def values(self) -> dict[str, dict[str, str]]:
        """What each coded value means, for the columns that hold codes."""
        return {
            header: {str(value): str(label) for value, label in f.flatchoices}
            for f, (header, _) in zip(self.fields(), self.columns(), strict=False)
            if f.choices
        }

    def rows(self, firm: Firm) -> Iterator[tuple]:
        lookups = [lookup for _, lookup in self.columns()]
        return (
            self.model._default_manager.filter(**{self.firm_path: firm.pk}, **self.where)
            .order_by("pk")
            .values_list(*lookups)
            .iterator(chunk_size=CHUNK_ROWS)
        )


def _has_public_id(model) -> bool:
    return any(f.name == "public_id" for f in model._meta.concrete_fields)


SHEETS = [
    Sheet("firm.csv", Firm, "The firm and its settings (clocks, cadences, thresholds).", "pk"),
    Sheet(
        "members.csv",
        Membership,
        "The firm's people: admins, staff, and the providers and delegates with an account.",
        extra=(("user_full_name", "user__full_name"),),
    ),
    Sheet(
        "invitations.csv",
        Invitation,
        "Invitations sent and what became of them.",
        leave_out=("nonce",),
    ),
    Sheet("clients.csv", Client, "Provider clients."),
    Sheet("organizations.csv", Organization, "Clients' companies (LLC, PLLC, group)."),
    Sheet(
        "profiles.csv",
        Profile,
        "CMS profiles: each client's individual one, and one per organization.",
    ),
    Sheet("delegates.csv", Delegate, "People at a provider's office who act for them."),
    Sheet(
        "delegate_roles.csv",
        DelegateRole,
        "A delegate's CMS role on one of the client's profiles.",
        "delegate__firm",
    ),
    Sheet("officials.csv", Official, "Organizations' Authorized and Delegated Officials."),
    Sheet(
        "access_grants.csv", AccessGrant, "Access to a profile in PECOS and NPPES: each attempt."
    ),
    Sheet(
        "enrollments.csv",
        Enrollment,
        "Medicare enrollment applications (revalidations included), with their outcomes.",
    ),
    Sheet(
        "revalidations.csv",
        Enrollment,
        "Revalidations and their CMS due dates (the same rows are in enrollments.csv).",
        where={"kind": Enrollment.Kind.REVALIDATION},
        only=("public_id", "profile", "state", "due_on", "deadline", "created_at"),
        extra=(("client_public_id", "profile__client__public_id"),),
    ),
    Sheet("signature_rounds.csv", SignatureRound, "Signature rounds of each application."),
    Sheet("signers.csv", Signer, "Who signs each round, and where they stand."),
    Sheet("development_requests.csv", DevelopmentRequest, "Contractors' development letters."),
    Sheet("credential_kinds.csv", CredentialKind, "The firm's catalogue of credential kinds."),
    Sheet("credentials.csv", Credential, "Licenses, certificates and attestations per profile."),
    Sheet(
        "credential_files.csv",
        CredentialFile,
        "Every version of every credential's document: stored name, type, size and SHA-256 "
        "(the documents themselves are not in this archive).",
    ),
    Sheet(
        "notifications.csv",
        Notification,
        "Every email and in-app message: to whom, about what, when, and whether it went out "
        "(not the bodies: they carry sign-in links).",
        leave_out=("body_text", "body_html", "claim_token"),
    ),
    Sheet(
        "bouncing_addresses.csv",
        BouncingAddress,
        "Addresses the mail server refused for good, with its reply.",
    ),
    Sheet("events.csv", AuditEvent, "The audit trail: who did or opened what, when, from where."),
]
# Firm rows not exported, with why: each is a key to something, not a record of the work.
LEFT_OUT = {
    CalendarFeed: "members' secret calendar addresses",
    SignInLink: "one-tap sign-in links",
    OpenStep: "the stuck report's copy of the open steps, derived from the sheets above",
}


def firm_export(*, firm: Firm, requested_by: User) -> Iterator[bytes]:
    """The firm's ZIP, piece by piece:
    1. one consistent read (PostgreSQL: a REPEATABLE READ, READ ONLY transaction, so the
       files agree with each other even while people work);
    2. each sheet's rows into its CSV member, handing out what is written every 64 KB;
    3. manifest.json last (it knows the row counts), then the ZIP's central directory."""
    zone = firm.zone
    pipe = _Pipe()
    files = []
    with _consistent_read(), zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as archive:
        generated_at = timezone.now()
        for sheet in SHEETS:
            count = 0
            with archive.open(sheet.name, "w", force_zip64=True) as member:
                text = io.TextIOWrapper(member, encoding="utf-8", newline="")
                writer = csv.writer(text)
                writer.writerow([header for header, _ in sheet.columns()])
                for row in sheet.rows(firm):
                    writer.writerow([csv_cell(value, zone) for value in row])
                    count += 1
                    if pipe.size >= FLUSH_BYTES:
                        yield from pipe.take()
                text.flush()
                text.detach()
            files.append(
                {
                    "name": sheet.name,
                    "about": sheet.about,
                    "rows": count,
                    "columns": [header for header, _ in sheet.columns()],
                    "values": sheet.values(),
                }
            )
            yield from pipe.take()
        documents = CredentialFile.objects.filter(firm=firm).aggregate(
            count=Count("pk"), bytes=Sum("size", default=0)
        )
        manifest = _manifest(firm, requested_by, generated_at, files, documents)
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
    yield from pipe.take()


def _manifest(firm, requested_by, generated_at, files, documents) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "firm": {
            "name": firm.name,
            "slug": firm.slug,
            "public_id": str(firm.public_id),
            "time_zone": firm.time_zone,
        },
        "generated_at": generated_at.astimezone(firm.zone).isoformat(),
        "generated_by": requested_by.email,
        "conventions": [
            f"Date-times are ISO 8601 in the firm's time zone ({firm.time_zone}) with their "
            "UTC offset; dates are calendar dates.",
            "Rows are named by public_id; a column <name>_public_id names a row of another "
            "file, <name>_email a person.",
            "Coded columns (states, kinds, roles) hold the code; `values` gives each meaning.",
            "Text a spreadsheet would run as a formula (starting with = + - @) starts with '.",
        ],
        "files": files,
        "documents": {
            "included": False,
            "count": documents["count"],
            "bytes": documents["bytes"],
            "about": "Listed in credential_files.csv (stored name, size, SHA-256), not "
            "included: each is downloadable from its credential, and the platform operator "
            f"can hand over the storage folder {firm.public_id}/ they are kept under.",
        },
        "left_out": [f"{model._meta.verbose_name_plural}: {why}" for model, why in LEFT_OUT.items()]
        + ["email bodies (they carry sign-in links), invitation nonces, claim tokens"],
    }


def csv_cell(value, zone: ZoneInfo):
    """One value as a CSV cell: moments in the firm's zone, ISO dates, and no formula
    injection (a cell a spreadsheet would run is quoted)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@contextmanager
def _consistent_read():
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


class _Pipe(io.RawIOBase):
    """Where zipfile writes, kept until the response takes it. It cannot seek, so zipfile
    writes each member's sizes after its data (a data descriptor), as streaming needs."""

    def __init__(self):
        super().__init__()
        self._chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> Iterator[bytes]:
        """What was written since the last take, as one piece (none if nothing was)."""
        if self._chunks:
            yield b"".join(self._chunks)
        self._chunks.clear()
        self.size = 0
