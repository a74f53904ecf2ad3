"""Bringing a firm's existing clients in from a CSV file.

`plan_import` reads the file and says, row by row, what would happen (new, unchanged,
updated) or why a row is refused; nothing is written. `apply_import` writes every valid row
of a plan in one transaction. Importing the same file twice changes nothing the second time.
"""

import csv
import hashlib
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from portal import audit
from portal.models import Firm, Membership, User, normalize_email, validate_portal_email
from portal.npi import validate_npi

from . import services
from .models import Client, Organization

COLUMNS = [
    "first_name",
    "last_name",
    "credentials",
    "npi",
    "email",
    "phone",
    "organization",
    "organization_npi",
    "assigned_staff_email",
]
REQUIRED = ["first_name", "last_name", "npi", "email"]
CLIENT_FIELDS = ["first_name", "last_name", "credentials", "npi", "email", "phone"]
MAX_ROWS = 5000


def template_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerow(
        [
            "Ana",
            "Rivera",
            "LCSW",
            "1234567893",
            "ana@example.com",
            "555-0100",
            "Rivera Therapy PLLC",
            "",
            "staff@yourfirm.example",
        ]
    )
    return out.getvalue()


@dataclass
class PlannedRow:
    line: int
    values: dict[str, str]
    status: str  # new | unchanged | updated | error
    reasons: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.values.get('first_name', '')} {self.values.get('last_name', '')}".strip()


@dataclass
class ImportPlan:
    rows: list[PlannedRow]
    error: str = ""

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)

    @property
    def summary(self) -> dict[str, int]:
        return {status: self.count(status) for status in ("new", "updated", "unchanged", "error")}

    @property
    def writable(self) -> list[PlannedRow]:
        return [row for row in self.rows if row.status in ("new", "updated")]

    @property
    def fingerprint(self) -> str:
        """Changes when what would be written changes (the data moved since the preview)."""
        digest = hashlib.sha256()
        for row in self.rows:
            digest.update(f"{row.line}:{row.status}:{sorted(row.values.items())}".encode())
        return digest.hexdigest()


def _field_error(validator, value) -> str | None:
    try:
        validator(value)
    except ValidationError as exc:
        return exc.messages[0]
    return None


def plan_import(*, firm: Firm, text: str) -> ImportPlan:
    """Read `text` (CSV) and decide each row's fate against the firm's current clients."""
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip().lower() for h in (reader.fieldnames or [])]
    repeated = sorted({h for h in headers if h and headers.count(h) > 1})
    if repeated:
        return ImportPlan(
            rows=[],
            error=f"The file has the column {', '.join(repeated)} more than once "
            "(headers are read without case); keep one of each.",
        )
    missing = [column for column in REQUIRED if column not in headers]
    if missing:
        return ImportPlan(
            rows=[], error=f"The file has no column {', '.join(missing)}. Use the template."
        )
    reader.fieldnames = headers
    raw_rows = list(reader)
    if len(raw_rows) > MAX_ROWS:
        return ImportPlan(rows=[], error=f"At most {MAX_ROWS} rows per file; split it.")
    if not raw_rows:
        return ImportPlan(rows=[], error="The file has no rows below its header.")

    staff = {
        user.email: user
        for user in User.objects.filter(
            pk__in=Membership.objects.firm_staff(firm).values("user_id")
        )
    }
    npis = [(row.get("npi") or "").strip() for row in raw_rows]
    existing = {
        client.npi: client
        for client in Client.objects.filter(firm=firm, npi__in=npis)
        .select_related("assigned_staff")
        .prefetch_related("organizations")
    }
    seen: dict[str, int] = {}
    planned = []
    for line, raw in enumerate(raw_rows, start=2):
        values = {column: (raw.get(column) or "").strip() for column in COLUMNS}
        values["email"] = normalize_email(values["email"])
        values["assigned_staff_email"] = normalize_email(values["assigned_staff_email"])
        row = PlannedRow(line=line, values=values, status="error")
        reasons = row.reasons
        for column in REQUIRED:
            if not values[column]:
                reasons.append(f"{column.replace('_', ' ')} is empty")
        if values["npi"] and (problem := _field_error(validate_npi, values["npi"])):
            reasons.append(f"NPI {values['npi']}: {problem}")
        if values["email"] and (
            _field_error(validate_email, values["email"])
            or _field_error(validate_portal_email, values["email"])
        ):
            reasons.append(f"“{values['email']}” is not an email address")
        if values["organization_npi"] and (
            problem := _field_error(validate_npi, values["organization_npi"])
        ):
            reasons.append(f"organization NPI {values['organization_npi']}: {problem}")
        unchecked = {"npi", "email"}  # refused above, in the import's own words
        reasons.extend(
            services.field_problems(
                Client(**{name: values[name] for name in CLIENT_FIELDS}),
                [name for name in CLIENT_FIELDS if values[name] and name not in unchecked],
            )
        )
        if values["organization"]:
            reasons.extend(
                f"organization {problem}"
                for problem in services.field_problems(
                    Organization(legal_name=values["organization"]), ["legal_name"]
                )
            )
        if values["organization_npi"] and not values["organization"]:
            reasons.append("organization NPI given without an organization name")
        if values["assigned_staff_email"] and values["assigned_staff_email"] not in staff:
            reasons.append(f"no active staff member {values['assigned_staff_email']}")
        if values["npi"] in seen:
            reasons.append(f"duplicate of line {seen[values['npi']]} (same NPI)")
        elif values["npi"]:
            seen[values["npi"]] = line
        if not reasons:
            client = existing.get(values["npi"])
            if client is None:
                row.status = "new"
            else:
                row.changes = _differences(client, values)
                row.status = "updated" if row.changes else "unchanged"
        planned.append(row)
    return ImportPlan(rows=planned)


def _differences(client: Client, values: dict[str, str]) -> list[str]:
    changes = [name for name in CLIENT_FIELDS if getattr(client, name) != values[name]]
    current_staff = client.assigned_staff.email if client.assigned_staff else ""
    if values["assigned_staff_email"] and values["assigned_staff_email"] != current_staff:
        changes.append("assigned_staff")
    if values["organization"]:
        organization = next(
            (o for o in client.organizations.all() if o.legal_name == values["organization"]),
            None,
        )
        if organization is None:
            changes.append("organization (new)")
        elif values["organization_npi"] and organization.npi != values["organization_npi"]:
            changes.append("organization NPI")
    return changes


def organization_kind(legal_name: str) -> str:
    """Read the kind from the name's suffix: "Rivera Therapy PLLC" is a PLLC."""
    words = legal_name.upper().replace(".", "").replace(",", " ").split()
    for suffix, kind in (("PLLC", Organization.Kind.PLLC), ("LLC", Organization.Kind.LLC)):
        if suffix in words:
            return kind
    if "GROUP" in words:
        return Organization.Kind.GROUP
    if {"INC", "CORP", "PC", "PA"} & set(words):
        return Organization.Kind.CORPORATION
    return Organization.Kind.OTHER


@transaction.atomic
def apply_import(*, firm: Firm, plan: ImportPlan, actor: User) -> dict[str, int]:
    """Write every new and updated row of `plan`, all or nothing."""
    staff = {
        user.email: user
        for user in User.objects.filter(memberships__firm=firm, memberships__is_active=True)
    }
    for row in plan.writable:
        values = row.values
        fields = {name: values[name] for name in CLIENT_FIELDS}
        assigned = (
            staff.get(values["assigned_staff_email"]) if values["assigned_staff_email"] else None
        )
        if row.status == "new":
            client = services.client_create(
                firm=firm, actor=actor, assigned_staff=assigned, **fields
            )
        else:
            client = Client.objects.get(firm=firm, npi=values["npi"])
            if assigned is not None:
                fields["assigned_staff"] = assigned
            services.client_update(client=client, actor=actor, **fields)
        if values["organization"]:
            organization = Organization.objects.filter(
                client=client, legal_name=values["organization"]
            ).first()
            if organization is None:
                services.organization_add(
                    client=client,
                    legal_name=values["organization"],
                    kind=organization_kind(values["organization"]),
                    npi=values["organization_npi"],
                    actor=actor,
                )
            elif values["organization_npi"] and organization.npi != values["organization_npi"]:
                organization.npi = values["organization_npi"]
                organization.save(update_fields=["npi"])
    counts = {"new": plan.count("new"), "updated": plan.count("updated")}
    audit.record("clients.imported", actor=actor, firm=firm, data=counts)
    return counts
