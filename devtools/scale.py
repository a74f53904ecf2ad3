"""A large, deterministic dataset for benchmarks (`manage.py seed_scale --size tiny|S|L`).

The same seed and base time give the same rows, ids and public ids included. The shape:
firms of skewed size (one large, a lognormal tail around a median of about 250 clients),
staff with caseloads, providers with individual and organizational profiles, and access
grants, enrollments and signature rounds in every state, each with the audit events the
services in `services.py` would have recorded (same verbs, {"from", "to"} data, targets and
client uuids, in time order, ending in the object's current state), and the notifications
`workflows.notify` would have scheduled for the most recent of them.

Nothing goes through the services or the ORM's save(): rows are planned in Python and written
per firm, with COPY on PostgreSQL and bulk_create elsewhere (tiny is meant for SQLite).

Limits of the shape, by construction:
- one live grant per profile caps open grants at the number of profiles (1.4 per client),
  and one open round per enrollment caps open rounds at the enrollments awaiting a
  signature; so about a third of enrollments are open, fewer grants and rounds;
- complete timelines cost about 37 events per client at these ratios (737,000 for S), more
  than the 500,000 first asked for; nothing is thinned to reach a number;
- event ids follow time within each firm (firms are written one after the other);
- notifications are those of the open steps first, then of the most recently closed ones,
  until the size's count is reached;
- claims ("I've done this") need a portal account, so only clients with one have them.
"""

import json
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from statistics import NormalDist

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import encrypt
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.urls import reverse

from clients.models import (
    NO_DEADLINE,
    Client,
    CMSRole,
    Delegate,
    DelegateRole,
    IAController,
    Organization,
    Profile,
)
from notifications.models import Notification
from notifications.outbox import message_id_for
from portal.demo import DEMO_TOTP_SECRET
from portal.models import AuditEvent, Firm, Invitation, Membership, Role, User, parse_day_list
from workflows.deadlines import days_after
from workflows.demo import FIRST as DEMO_FIRST
from workflows.demo import LAST as DEMO_LAST
from workflows.models import AccessGrant, Enrollment, Holder, OpenStep, SignatureRound, Signer
from workflows.notify import Clock
from workflows.open_steps import fill_open_steps, refresh_next_deadline


@dataclass(frozen=True)
class Size:
    name: str
    firms: int
    clients: int
    largest: int  # clients of the largest firm
    busiest: int  # caseload of its busiest staff member
    staff: int  # admins and staff in all; every firm has one admin
    largest_regulars: int  # staff of the largest firm besides its admin and the bench trio
    grants: int
    enrollments: int
    rounds: int
    notifications: int


SIZES = {
    # tiny keeps the benchmark members' exact caseloads (35 and 350), so its largest firm is
    # big for its size; it exists for CI and runs in seconds on SQLite.
    "tiny": Size("tiny", 3, 900, 800, 400, 7, 0, 4_500, 2_700, 3_600, 9_000),
    "S": Size("S", 50, 20_000, 3_000, 700, 80, 5, 100_000, 60_000, 80_000, 200_000),
    "L": Size("L", 500, 200_000, 30_000, 7_000, 800, 50, 1_000_000, 600_000, 800_000, 2_000_000),
}
BENCH_CASELOADS = (35, 350)
PASSWORD = "scale-pass-2026!"  # noqa: S105  (benchmark data only; printed by the command)
TOTP_SECRET = DEMO_TOTP_SECRET  # the published demo secret: staff need a second factor

ORGANIZATION_SHARE = 0.40
PORTAL_SHARE = 0.10
DELEGATE_SHARE = 0.10
UNASSIGNED_SHARE = 0.01
PAST_DUE_SHARE = 0.04  # pending connection requests already past their deadline
FIRM_SIZE_SIGMA = 0.8  # lognormal spread of the firms after the largest
NOTIFY_RECENT_DAYS = 60  # closed steps whose notifications may be kept
NOTIFY_OPEN_SHARE = 0.85  # of the notifications, those of open steps (when there are enough)
BACKLOG = timedelta(days=1)  # emails due this recently are still scheduled: due now

# The state of each profile's current (last) access grant.
CURRENT_GRANT_MIX = {
    "prepared": 4,
    "awaiting_provider": 50,
    "provider_says_done": 11,
    "active": 28,
    "expired": 4,
    "rejected": 1.5,
    "cancelled": 1.5,
}
EARLIER_GRANT_MIX = {"expired": 60, "rejected": 25, "cancelled": 15}
METHOD_MIX = {"connection_request": 70, "add_staff": 20, "add_surrogate": 10}
ENROLLMENT_MIX = {
    "preparing": 4,
    "awaiting_signature": 10,
    "submitted": 4.5,
    "in_development": 1.5,
    "approved": 30,
    "denied": 3,
    "rejected": 1,
    "returned": 0.5,
    "withdrawn": 7,
}
ENROLLMENT_KIND_MIX = {"initial": 40, "revalidation": 30, "change": 20, "reassignment": 10}
MIN_ROUNDS = {
    "preparing": 0,
    "awaiting_signature": 1,
    "submitted": 1,
    "in_development": 1,
    "approved": 1,
    "denied": 1,
    "rejected": 1,
    "returned": 1,
    "withdrawn": 0,
}
MAX_ROUNDS = 6
# A seeded round's one signer, in the state its round is in.
SIGNER_STATE = {
    "confirmed": "signed",
    "received": "signed",
    "provider_says_signed": "says_signed",
    "mailed": "says_signed",
}
# When the current state was entered, in days before the base time.
ENROLLMENT_AGE = {
    "preparing": (0.02, 60),
    "awaiting_signature": (0.02, 30),
    "submitted": (0.02, 90),
    "in_development": (0.02, 45),
    "approved": (0.5, 900),
    "denied": (0.5, 900),
    "rejected": (0.5, 900),
    "returned": (0.5, 900),
    "withdrawn": (0.5, 900),
}

FIRST = [
    *DEMO_FIRST,  # the demo's names first, then more
    "Gia",
    "Hugo",
    "Iris",
    "Jude",
    "Kira",
    "Leo",
    "Mina",
    "Nico",
    "Opal",
    "Pia",
    "Quin",
    "Rosa",
    "Seth",
    "Tara",
    "Uma",
    "Vic",
    "Wren",
    "Xena",
    "Yusuf",
    "Zara",
]
LAST = [
    *DEMO_LAST,  # the demo's names first, then more
    "Abbott",
    "Bauer",
    "Chen",
    "Diaz",
    "Eriksen",
    "Fischer",
    "Gupta",
    "Haddad",
    "Ito",
    "Jovanovic",
    "Kowalski",
    "Larsen",
    "Mensah",
    "Novak",
]
CREDENTIALS = ["MD", "DO", "LCSW", "PsyD", "LPC", "NP", "PT", "LMFT", "PA", "DPM"]
ORGANIZATION_SUFFIXES = [
    ("Health PLLC", "pllc"),
    ("Therapy LLC", "llc"),
    ("Medical Group", "group"),
    ("Clinic Inc", "corporation"),
    ("Wellness PLLC", "pllc"),
]
FIRM_WORDS = [
    "Northwind",
    "Bluebird",
    "Summit",
    "Harbor",
    "Cedar",
    "Meridian",
    "Keystone",
    "Pioneer",
    "Lakeside",
    "Granite",
    "Redwood",
    "Beacon",
    "Prairie",
    "Coastal",
    "Evergreen",
    "Liberty",
    "Canyon",
    "Riverbend",
    "Highland",
    "Aspen",
]
TIME_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
]
REVISION_REASONS = [
    "Corrected the practice location",
    "Added a reassignment of benefits",
    "Updated ownership information",
    "Development request: corrected the NPI",
    "Updated the correspondence address",
]
CANCEL_REASONS = ["", "Provider asked for changes", "Wrong form version", "Duplicate request"]

METHOD_LABEL = dict(AccessGrant.Method.choices)
KIND_LABEL = dict(Enrollment.Kind.choices)
TARGET_GRANT = AccessGrant._meta.label_lower
TARGET_ENROLLMENT = Enrollment._meta.label_lower
TARGET_ROUND = SignatureRound._meta.label_lower
TARGET_CLIENT = Client._meta.label_lower
TARGET_ORGANIZATION = Organization._meta.label_lower
TARGET_DELEGATE = Delegate._meta.label_lower

NOTIFICATION_TITLES = {
    "grant.requested": "Please approve your credentialer's access request",
    "grant.reminder": "Reminder: approve your credentialer's access request",
    "grant.staff_alert": "Access request still pending",
    "grant.verify": "Verify: the provider says access is granted",
    "grant.active": "Your credentialer's access is active",
    "grant.expired": "Your credentialer's access request expired",
    "grant.expired_staff": "Access request expired, send it again",
    "round.opened": "Your application is ready to sign",
    "round.reminder": "Reminder: your application is waiting for your signature",
    "round.staff_alert": "A signature is still missing",
    "round.overdue": "A signature round passed its deadline",
    "round.verify": "Verify: the provider says the round is signed",
    "round.signed": "Signature received: thank you",
}


# The audit verbs of the services (workflows/services.py, clients/services.py), split into those
# the seeder writes and those it leaves out on purpose. tests/devtools/test_scale.py reads the
# services' source and fails on a verb that is in neither, so a new transition cannot go
# unseeded without someone deciding it.
SEEDED_VERBS = frozenset(
    {
        "client.created",
        "organization.added",
        "delegate.saved",
        "grant.prepared",
        "grant.sent",
        "grant.provider_says_done",
        "grant.not_yet_done",
        "grant.active",
        "grant.expired",
        "grant.rejected",
        "grant.cancelled",
        "enrollment.created",
        "enrollment.state_changed",
        "round.opened",
        "round.provider_says_signed",
        "round.mailed",
        "round.received",
        "round.confirmed",
        "round.cancelled",
        "portal.invited",
        "portal.linked",
    }
)
UNSEEDED_VERBS = {
    # The credentials file (issue 14) is not seeded yet: the stuck report's credential and
    # revalidation parts run over empty tables at scale (docs/performance.md says so).
    "credential.added": "no credentials in the dataset yet",
    "credential.requested": "no credentials in the dataset yet",
    "credential.uploaded": "no credentials in the dataset yet",
    "credential.provider_says_done": "no credentials in the dataset yet",
    "credential.accepted": "no credentials in the dataset yet",
    "credential.rejected": "no credentials in the dataset yet",
    "credential.cancelled": "no credentials in the dataset yet",
    "enrollment.revalidation_due": "no revalidation due dates in the dataset yet",
    "credential_kind.added": "the dataset's firms keep the default catalogue",
    "credential_kind.activated": "the dataset's firms keep the default catalogue",
    "credential_kind.deactivated": "the dataset's firms keep the default catalogue",
    "revalidations.imported": "no revalidation due dates in the dataset yet",
    "client.updated": "edits leave no state behind: the timeline reads the same without them",
    "enrollment.updated": "edits of notes and identifiers: no state, no clock",
    "client.ia_updated": "who controls the I&A login is seeded as the person's current value",
    "client.ia_regain_claimed": "regaining the I&A login is seeded as its current value",
    "client.ia_password_reset": "a likely password reset is seeded as its current value",
    "delegate.removed": "the dataset keeps every delegate it creates",
    "round.not_yet_signed": "a bounce back to the provider; grants carry the same shape",
    "grant.firm_not_found": "an alert to staff; it changes no state",
    "grant.claim_undone": "a mis-tap taken back within minutes leaves the state as it was",
    "signer.claim_undone": "a mis-tap taken back within minutes leaves the state as it was",
    "round.claim_undone": "a mis-tap taken back within minutes leaves the state as it was",
    "development.claim_undone": "a mis-tap taken back within minutes leaves the state as it was",
    "caseload.released": "members are not deactivated in the dataset",
    # Signers are seeded in their round's state; their own events are not.
    "signer.says_signed": "the round's own event (round.provider_says_signed) is seeded",
    "signer.signed": "the round's own event (round.confirmed) is seeded",
    "signer.not_yet_signed": "a bounce back to the provider; grants carry the same shape",
    "official.saved": "the dataset records no officials: the provider signs its rounds",
    "official.removed": "the dataset records no officials: the provider signs its rounds",
    # Outcomes, reconsiderations and development requests (issue 10) are not seeded yet: the
    # dataset's approved and denied enrollments carry their state without a letter's date,
    # and its enrollments in development have no request records.
    "enrollment.outcome": "outcomes are seeded as states (enrollment.state_changed)",
    "enrollment.reconsideration_filed": "no reconsideration windows in the dataset",
    "enrollment.reconsideration_declined": "no reconsideration windows in the dataset",
    "enrollment.reconsideration_upheld": "no reconsideration windows in the dataset",
    "enrollment.reconsideration_lapsed": "no reconsideration windows in the dataset",
    "development.opened": "development is seeded as the enrollment's state alone",
    "development.provider_says_done": "development is seeded as the enrollment's state alone",
    "development.not_yet_done": "development is seeded as the enrollment's state alone",
    "development.answered": "development is seeded as the enrollment's state alone",
    "development.cancelled": "development is seeded as the enrollment's state alone",
}


# --- helpers --------------------------------------------------------------------------


def quotas(total: int, weights: dict) -> dict:
    """Split `total` in proportion to `weights`, exactly (largest remainder)."""
    whole = sum(weights.values())
    raw = {key: total * weight / whole for key, weight in weights.items()}
    result = {key: int(value) for key, value in raw.items()}
    short = total - sum(result.values())
    for key in sorted(raw, key=lambda k: (result[k] - raw[k], list(raw).index(k)))[:short]:
        result[key] += 1
    return result


def npi_for(number: int) -> str:
    """A valid NPI (Luhn over 80840 + nine digits) for each distinct `number` below 9e8."""
    first_nine = str(100_000_000 + (number * 7919) % 900_000_000)
    total = 0
    for position, char in enumerate(reversed("80840" + first_nine)):
        value = int(char)
        if position % 2 == 0:  # the check digit will take position 0
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return first_nine + str((10 - total % 10) % 10)


def firm_sizes(size: Size) -> list[int]:
    """The largest firm, then the others from lognormal quantiles scaled to the total."""
    others = size.firms - 1
    remaining = size.clients - size.largest
    if others <= 0:
        return [size.largest]
    normal = NormalDist()
    shape = [math.exp(FIRM_SIZE_SIGMA * normal.inv_cdf((i + 0.5) / others)) for i in range(others)]
    scale = remaining / sum(shape)
    sizes = sorted((max(5, round(s * scale)) for s in shape), reverse=True)
    short, index = remaining - sum(sizes), 0
    while short:
        step = 1 if short > 0 else -1
        sizes[index % others] += step
        short -= step
        index += 1
    if sizes[0] >= size.largest:
        raise ValueError("The largest firm must be larger than every other.")
    return [size.largest, *sizes]


# Fields whose Python values the database driver may not take as they are.
ADAPTED_FIELDS = (
    models.DateTimeField,
    models.DateField,
    models.UUIDField,
    models.JSONField,
    models.DecimalField,
)


class Table:
    """Rows of one model waiting to be written, as tuples in its column order."""

    def __init__(self, model: type[models.Model], defaults: dict | None = None):
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.columns = [f.attname for f in self.fields]
        self.defaults = defaults or {}
        self.json = [i for i, f in enumerate(self.fields) if isinstance(f, models.JSONField)]
        self.rows: list[tuple] = []
        self.written = 0
        self.next_id = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def add(self, **values) -> None:
        if not self.rows and set(values) - set(self.columns):
            unknown = set(values) - set(self.columns)
            raise KeyError(f"{self.model.__name__}: unknown columns {unknown}")
        defaults = self.defaults
        try:
            self.rows.append(tuple(values[c] if c in values else defaults[c] for c in self.columns))
        except KeyError as missing:
            raise KeyError(f"{self.model.__name__}: no value for {missing}") from None

    def flush(self, batch_size: int = 2000) -> None:
        if not self.rows:
            return
        if connection.vendor == "postgresql":
            quote = connection.ops.quote_name
            sql = "COPY {} ({}) FROM STDIN".format(
                quote(self.model._meta.db_table), ", ".join(quote(c) for c in self.columns)
            )
            encoders = {i: self.fields[i].encoder for i in self.json}
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                if self.json:
                    for row in self.rows:
                        row = list(row)
                        for i, encoder in encoders.items():
                            row[i] = json.dumps(row[i], cls=encoder)
                        copy.write_row(row)
                else:
                    for row in self.rows:
                        copy.write_row(row)
        else:
            # Elsewhere (SQLite for tiny): executemany, adapting only the values that need it.
            quote = connection.ops.quote_name
            sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608  (quoted model names)
                quote(self.model._meta.db_table),
                ", ".join(quote(c) for c in self.columns),
                ", ".join(["%s"] * len(self.columns)),
            )
            adapt = [
                (i, f.get_db_prep_save)
                for i, f in enumerate(self.fields)
                if isinstance(f, ADAPTED_FIELDS)
            ]
            with connection.cursor() as cursor:
                for start in range(0, len(self.rows), batch_size):
                    batch = []
                    for row in self.rows[start : start + batch_size]:
                        row = list(row)
                        for i, prepare in adapt:
                            row[i] = prepare(row[i], connection)
                        batch.append(row)
                    cursor.executemany(sql, batch)
        self.written += len(self.rows)
        self.rows = []


@dataclass
class Person:
    id: int | None
    email: str
    name: str


@dataclass
class Plan:
    """One client, its profiles and their workflows, before they become rows."""

    index: int
    id: int
    public_id: uuid.UUID
    first: str
    last: str
    credentials: str
    npi: str
    email: str
    staff: Person | None
    account: bool
    delegate: bool
    profiles: list[dict] = field(default_factory=list)
    created: datetime | None = None
    user_id: int | None = None

    @property
    def display_name(self) -> str:
        return f"{self.first} {self.last}, {self.credentials}"


# --- the builder ----------------------------------------------------------------------


class ScaleBuilder:
    def __init__(self, size: Size, *, seed: int, now: datetime):
        self.size = size
        self.seed = seed
        self.base = now.astimezone(UTC)
        self.rng = random.Random(f"credportal-scale-{seed}")
        self.timings: dict[str, float] = {}
        empty = {"ip": None, "last_login": None, "deactivated_at": None}
        self.tables = {
            model: Table(model, defaults)
            for model, defaults in [
                (Firm, {}),
                (User, {**empty, "is_superuser": False, "is_active": True, "is_staff": False}),
                (Membership, {**empty, "is_active": True}),
                (EmailAddress, {"verified": True, "primary": True}),
                (Authenticator, {"last_used_at": None}),
                (Invitation, {"revoked_at": None}),
                (Client, {"notes": "", "credentials": "", "phone": ""}),
                (Organization, {}),
                (Profile, {}),
                (Delegate, {"is_active": True}),
                (DelegateRole, {}),
                (AccessGrant, {"pecos": True, "nppes": True, "requested_role": ""}),
                (
                    Enrollment,
                    {
                        "follow_up_on": None,
                        "tracking_number": "",
                        # Outcomes are seeded as states alone: no letter dates, no windows.
                        "decided_on": None,
                        "outcome_reason": "",
                        "effective_date": None,
                        "reconsideration": "",
                        "reconsideration_deadline": None,
                        "reconsideration_filed_on": None,
                        "due_on": None,  # no revalidation due dates yet
                        "deadline": None,
                    },
                ),
                (SignatureRound, {"mailed_at": None, "closed_at": None}),
                (Signer, {"official_id": None, "is_provider": True}),
                (AuditEvent, {"ip": None}),
                (
                    Notification,
                    {
                        "last_error": "",
                        "claim_token": None,
                        "claimed_at": None,
                        "sent_at": None,
                        "read_at": None,
                        "attempts": 0,
                        "body_html": "",
                    },
                ),
            ]
        }
        for table in self.tables.values():
            top = table.model._base_manager.aggregate(top=models.Max("pk"))["top"]
            table.next_id = (top or 0) + 1
        self.password = make_password(PASSWORD, salt=f"scaleseed{seed}")
        self.dashboard = reverse("dashboard")
        placeholder = uuid.UUID(int=0)
        self.client_link = reverse("client_detail", args=[placeholder]).replace(
            str(placeholder), "{}"
        )
        self.client_counter = 0
        self.bench: dict[str, str] = {}

    # -- randomness and time --------------------------------------------------------

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def span(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=int((low + self.rng.random() * (high - low)) * 86400))

    def ago(self, low: float, high: float) -> datetime:
        return self.base - self.span(low, high)

    def between(self, start: datetime, end: datetime, low=0.0, high=1.0) -> datetime:
        fraction = low + self.rng.random() * (high - low)
        return start + timedelta(seconds=int((end - start).total_seconds() * fraction))

    def pick(self, weights: dict) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def shuffled(self, counts: dict) -> list:
        items = [key for key, n in counts.items() for _ in range(n)]
        self.rng.shuffle(items)
        return items

    # -- the whole build ------------------------------------------------------------

    def build(self) -> dict[str, int]:
        started = time.perf_counter()
        sizes = firm_sizes(self.size)
        per_firm = {
            name: list(quotas(getattr(self.size, name), dict(enumerate(sizes))).values())
            for name in ("grants", "enrollments", "rounds", "notifications")
        }
        self.timings.update(plan=0.0, write=0.0)
        with transaction.atomic():
            firms = self._planned(self._firms_and_staff, sizes)
            self._flush()
        for index, (firm, staff) in enumerate(firms):
            with transaction.atomic():
                shares = {name: counts[index] for name, counts in per_firm.items()}
                self._planned(self._firm, index, firm, staff, shares)
                self._flush()
        self._reset_sequences()
        timings = self.timings
        timings["total"] = time.perf_counter() - started
        timings["commit"] = timings["total"] - timings["plan"] - timings["write"]
        return {table.model.__name__: table.written for table in self.tables.values()}

    def _planned(self, step, *args):
        started = time.perf_counter()
        result = step(*args)
        self.timings["plan"] += time.perf_counter() - started
        return result

    def _flush(self) -> None:
        started = time.perf_counter()
        for table in self.tables.values():
            table.flush()
        self.timings["write"] += time.perf_counter() - started

    def _reset_sequences(self) -> None:
        statements = connection.ops.sequence_reset_sql(
            no_style(), [table.model for table in self.tables.values()]
        )
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    # -- firms, staff and their caseloads -------------------------------------------

    def _firms_and_staff(self, sizes: list[int]):
        rng = self.rng
        n = len(sizes)
        members = [1] * n
        members[0] += len(BENCH_CASELOADS) + 1 + self.size.largest_regulars
        extra = self.size.staff - sum(members)
        if extra < 0 or (n == 1 and extra):
            raise ValueError("Not enough staff for one admin per firm and the bench members.")
        for _ in range(extra):
            best = max(range(1, n), key=lambda i: (sizes[i] / members[i], -i))
            members[best] += 1
        firm_created = self.base - timedelta(days=6 * 365)
        result = []
        for index, clients in enumerate(sizes):
            slug = f"scale-{index + 1:03d}"
            word = FIRM_WORDS[index % len(FIRM_WORDS)]
            firm = Firm(
                id=self.tables[Firm].new_id(),
                public_id=self.uuid(),
                name=f"{word} Credentialing {index + 1:03d}",
                slug=slug,
                time_zone=TIME_ZONES[rng.randrange(len(TIME_ZONES))],
                contact_email=f"help@{slug}.example",
                created_at=firm_created + self.span(0, 30),
            )
            self.tables[Firm].add(**{c: getattr(firm, c) for c in self.tables[Firm].columns})
            people: list[tuple[Person, str, int | None]] = []  # (person, role, quota)
            admin = self._staff_user(firm, f"admin@{slug}.example", Role.ADMIN)
            people.append((admin, Role.ADMIN, None))
            if index == 0:
                busiest = self._staff_user(firm, f"bench-busiest@{slug}.example", Role.STAFF)
                people.append((busiest, Role.STAFF, self.size.busiest))
                self.bench["busiest"] = busiest.email
                for caseload in BENCH_CASELOADS:
                    person = self._staff_user(firm, f"bench-{caseload}@{slug}.example", Role.STAFF)
                    people.append((person, Role.STAFF, caseload))
                    self.bench[f"caseload {caseload}"] = person.email
                self.bench["admin"] = admin.email
                self.bench["firm"] = slug
            while len(people) < members[index]:
                number = len(people)
                person = self._staff_user(firm, f"staff{number}@{slug}.example", Role.STAFF)
                people.append((person, Role.STAFF, None))
            result.append((firm, self._caseloads(clients, people, admin)))
        return result

    def _staff_user(self, firm: Firm, email: str, role: str) -> Person:
        name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
        joined = firm.created_at + self.span(0, 60)
        user_id = self._user(email, name, joined)
        self.tables[Membership].add(
            id=self.tables[Membership].new_id(),
            public_id=self.uuid(),
            user_id=user_id,
            firm_id=firm.id,
            role=role,
            created_at=joined,
        )
        self.tables[Authenticator].add(
            id=self.tables[Authenticator].new_id(),
            user_id=user_id,
            type=Authenticator.Type.TOTP,
            data={"secret": encrypt(TOTP_SECRET)},
            created_at=joined,
        )
        return Person(user_id, email, name)

    def _user(self, email: str, name: str, joined: datetime) -> int:
        user_id = self.tables[User].new_id()
        self.tables[User].add(
            id=user_id,
            password=self.password,
            public_id=self.uuid(),
            email=email,
            full_name=name,
            date_joined=joined,
        )
        self.tables[EmailAddress].add(
            id=self.tables[EmailAddress].new_id(), user_id=user_id, email=email
        )
        return user_id

    def _caseloads(self, clients: int, people, admin: Person) -> tuple[list, Person]:
        """Each client's assigned staff member (None: unassigned), shuffled."""
        unassigned = round(clients * UNASSIGNED_SHARE)
        fixed = sum(quota for _, _, quota in people if quota is not None)
        free = [person for person, _, quota in people if quota is None]
        rest = clients - unassigned - fixed
        if rest < 0:
            raise ValueError("The largest firm is too small for the bench caseloads.")
        if fixed:  # the largest firm: the others share the rest evenly
            shares = quotas(rest, dict.fromkeys(range(len(free)), 1))
        else:
            shares = quotas(rest, {i: self.rng.uniform(0.6, 1.4) for i in range(len(free))})
        slots: list[Person | None] = [None] * unassigned
        for person, _, quota in people:
            if quota is not None:
                slots += [person] * quota
        for i, person in enumerate(free):
            slots += [person] * shares[i]
        self.rng.shuffle(slots)
        return slots, admin

    # -- one firm ---------------------------------------------------------------------

    def _firm(self, index: int, firm: Firm, staff, counts: dict) -> None:
        rng = self.rng
        slots, admin = staff
        plans: list[Plan] = []
        for slot in slots:
            self.client_counter += 1
            number = self.client_counter
            first, last = rng.choice(FIRST), rng.choice(LAST)
            plan = Plan(
                index=number,
                id=self.tables[Client].new_id(),
                public_id=self.uuid(),
                first=first,
                last=last,
                credentials=rng.choice(CREDENTIALS),
                npi=npi_for(number),
                email=f"{first}.{last}.{number}@clinic.example".lower(),
                staff=slot,
                account=rng.random() < PORTAL_SHARE,
                delegate=rng.random() < DELEGATE_SHARE,
            )
            plan.profiles.append(self._profile(plan, None))
            if rng.random() < ORGANIZATION_SHARE:
                suffix, kind = rng.choice(ORGANIZATION_SUFFIXES)
                organization = {
                    "id": self.tables[Organization].new_id(),
                    "public_id": self.uuid(),
                    "legal_name": f"{last} {suffix}",
                    "kind": kind,
                    "npi": npi_for(number + 500_000_000) if rng.random() < 0.7 else "",
                }
                plan.profiles.append(self._profile(plan, organization))
            plans.append(plan)
        profiles = [(plan, profile) for plan in plans for profile in plan.profiles]
        self._plan_grants(firm, profiles, counts["grants"])
        self._plan_enrollments(firm, profiles, counts["enrollments"], counts["rounds"])
        if index == 0:
            self._choose_bench_provider(firm, plans)
        events: list[list] = []
        for plan in plans:
            self._materialize(firm, plan, admin, events)
        self._events(events)
        self._notifications(firm, plans, admin, counts["notifications"])

    def _profile(self, plan: Plan, organization: dict | None) -> dict:
        rng = self.rng
        roll = rng.random()
        controller = (
            IAController.SOMEONE_ELSE
            if roll < 0.03
            else IAController.UNKNOWN
            if roll < 0.05
            else IAController.PROVIDER
        )
        return {
            "id": self.tables[Profile].new_id(),
            "public_id": self.uuid(),
            "organization": organization,
            "label": organization["legal_name"] if organization else "Individual profile",
            "ia_controller": controller,
            "password_reset_likely": rng.random() < 0.05,
            "grants": [],
            "enrollments": [],
        }

    # -- access grants ------------------------------------------------------------------

    def _plan_grants(self, firm: Firm, profiles, total: int) -> None:
        rng = self.rng
        if total < len(profiles):
            raise ValueError("Fewer grants than profiles.")
        current = self.shuffled(quotas(len(profiles), CURRENT_GRANT_MIX))
        earlier = [0] * len(profiles)
        for _ in range(total - len(profiles)):
            earlier[rng.randrange(len(profiles))] += 1
        for (plan, profile), state, n_earlier in zip(profiles, current, earlier, strict=True):
            if state == "provider_says_done" and not plan.account:
                state = "awaiting_provider"  # only a provider with an account can claim
            self._grant_chain(firm, plan, profile, state, n_earlier)

    def _grant_chain(self, firm: Firm, plan: Plan, profile: dict, state: str, n_earlier: int):
        """The profile's attempts, newest first while planning, stored oldest first."""
        chain = [self._grant_head(state)]
        for _ in range(n_earlier):
            newer = chain[-1]
            older_state = self.pick(EARLIER_GRANT_MIX)
            if not newer["sent_at_once"]:
                older_state = "cancelled"  # only a new grant (not "send again") starts prepared
            older = self._grant_head(older_state)
            if older_state in AccessGrant.RETRYABLE_STATES:
                older["method"] = newer["method"]
                older["requested_role"] = newer["requested_role"]
                newer["previous"] = older
            chain.append(older)
        end = None
        for grant in chain:
            self._grant_times(firm, plan, grant, before=end)
            gap = self.span(0.1, 4) if grant["previous"] is not None else self.span(1, 30)
            end = grant["created_at"] - gap
        chain.reverse()
        profile["grants"] = chain

    def _grant_head(self, state: str) -> dict:
        method = self.pick(METHOD_MIX)
        from_prepared = state == "prepared" or (state == "cancelled" and self.rng.random() < 0.3)
        return {
            "id": None,
            "public_id": self.uuid(),
            "method": method,
            "requested_role": (
                (CMSRole.ACCESS_MANAGER if self.rng.random() < 0.8 else CMSRole.STAFF_END_USER)
                if method == "add_staff"
                else ""
            ),
            "state": state,
            "from_prepared": from_prepared,
            "sent_at_once": not from_prepared,
            "previous": None,
            "events": [],
        }

    def _grant_times(self, firm: Firm, plan: Plan, grant: dict, *, before: datetime | None):
        """Times and events of one attempt. `before`: when it must have ended (older ones)."""
        rng = self.rng
        state, method = grant["state"], grant["method"]
        request = method == "connection_request"
        events = grant["events"]
        sent = end = claim = None

        def end_at(low: float, high: float) -> datetime:
            return before if before is not None else self.ago(low, high)

        if state == "prepared":
            created = self.ago(0.05, 10)
        elif state in ("awaiting_provider", "provider_says_done"):
            if request:
                past_due = state == "awaiting_provider" and rng.random() < PAST_DUE_SHARE
                sent = self.ago(30.05, 34) if past_due else self.ago(0.02, 30)
            else:
                sent = self.ago(0.02, 45)
            if state == "provider_says_done":
                claim = self.between(sent, self.base, 0.05, 0.95)
        elif state == "active":
            end = end_at(0.5, 700)
            if plan.account and rng.random() < 0.5:
                claim = end - self.span(0.1, 3)
                sent = claim - self.span(0.3, 20)
            else:
                sent = end - self.span(0.5, 28 if request else 40)
        elif state == "expired":
            end = end_at(0.5, 240)
            if request:
                sent = days_after(firm, end, -firm.grant_expiry_days)
                end = days_after(firm, sent, firm.grant_expiry_days)
            else:
                sent = end - self.span(20, 60)
        elif state == "rejected":
            end = end_at(0.5, 240)
            sent = end - self.span(1, 29)
        else:  # cancelled
            end = end_at(0.5, 300)
            if grant["from_prepared"]:
                created = end - self.span(0.1, 10)
            else:
                sent = end - self.span(0.5, 25)
        if sent is not None:
            if grant["previous"] is not None or rng.random() < 0.8:
                created = sent
            else:
                created = sent - self.span(0.01, 3)
        grant.update(
            created_at=created,
            sent_at=sent,
            deadline=days_after(firm, sent, firm.grant_expiry_days)
            if sent is not None and request
            else None,
        )
        prepared = {"to": "prepared"}
        if grant["previous"] is not None:
            prepared["previous"] = str(grant["previous"]["public_id"])
        else:
            prepared["method"] = method
        events.append([created, "grant.prepared", prepared, "staff"])
        at, current = created, "prepared"

        def move(moment, verb, to, reason="", actor="staff"):
            nonlocal at, current
            data = {"from": current, "to": to}
            if reason:
                data["reason"] = reason
            events.append([moment, verb, data, actor])
            at, current = moment, to

        if sent is not None:
            move(sent, "grant.sent", "awaiting_provider")
        if state == "awaiting_provider" and plan.account and rng.random() < 0.15:
            # The provider said done, staff could not see it yet: back to the provider.
            limit = min(self.base, grant["deadline"] or self.base)
            bounce = self.between(sent, limit, 0.1, 0.6)
            move(bounce, "grant.provider_says_done", "provider_says_done", self._says(plan))
            back = self.between(bounce, limit, 0.1, 0.9)
            move(back, "grant.not_yet_done", "awaiting_provider", "Access not visible yet")
        if claim is not None:
            move(claim, "grant.provider_says_done", "provider_says_done", self._says(plan))
        if state == "active":
            move(end, "grant.active", "active")
        elif state == "expired":
            if request:
                move(end, "grant.expired", "expired", "Not approved within the deadline", None)
            else:
                move(end, "grant.expired", "expired", "Recorded by staff")
        elif state == "rejected":
            move(end, "grant.rejected", "rejected", "Rejected")
        elif state == "cancelled":
            move(end, "grant.cancelled", "cancelled", rng.choice(CANCEL_REASONS))
        grant["state_entered_at"] = at
        grant["claimed_at"] = claim

    def _says(self, plan: Plan) -> str:
        return f"{plan.display_name} says it is done"

    # -- enrollments and signature rounds -------------------------------------------

    def _plan_enrollments(self, firm: Firm, profiles, total: int, rounds: int) -> None:
        rng = self.rng
        individual = [i for i, (_, p) in enumerate(profiles) if p["organization"] is None]
        owners = list(individual)
        if total < len(owners):
            owners = owners[:total]
        owners += [rng.randrange(len(profiles)) for _ in range(total - len(owners))]
        states = self.shuffled(quotas(total, ENROLLMENT_MIX))
        n_rounds = [MIN_ROUNDS[state] for state in states]
        extra = rounds - sum(n_rounds)
        if extra < 0:
            raise ValueError("Too few rounds for the enrollments' states.")
        while extra:
            i = rng.randrange(total)
            if n_rounds[i] < MAX_ROUNDS:
                n_rounds[i] += 1
                extra -= 1
        open_states = {str(state) for state in Enrollment.OPEN_STATES}
        for owner, state, n in zip(owners, states, n_rounds, strict=True):
            plan, profile = profiles[owner]
            kind = self.pick(ENROLLMENT_KIND_MIX)
            if state in open_states:
                # At most one open enrollment per profile and kind (a database rule).
                taken = {e["kind"] for e in profile["enrollments"] if e["final"] in open_states}
                free = [k for k in ENROLLMENT_KIND_MIX if k not in taken]
                if kind in taken and free:
                    kind = free[0]
                elif kind in taken:  # every kind open already: this one is closed instead
                    state = "approved" if n >= MIN_ROUNDS["approved"] else "withdrawn"
            profile["enrollments"].append(self._enrollment(firm, plan, state, n, kind))

    def _enrollment(self, firm: Firm, plan: Plan, final: str, n_rounds: int, kind: str) -> dict:
        rng = self.rng
        t = self.base  # built forward from here, then shifted so the state began in time
        enrollment = {
            "id": None,
            "public_id": self.uuid(),
            "final": final,
            "kind": kind,
            "rounds": [],
            "events": [[t, "enrollment.created", {"to": "preparing"}, "staff"]],
            "created_at": t,
        }
        events, rounds = enrollment["events"], enrollment["rounds"]
        state, holder, holder_reason, entered = "preparing", Holder.FIRM, "", t

        def move(moment, to, reason="", new_holder=None, new_reason=None):
            nonlocal state, holder, holder_reason, entered
            data = {"from": state, "to": to}
            if reason:
                data["reason"] = reason
            events.append([moment, "enrollment.state_changed", data, "staff"])
            state, entered = to, moment
            holder = new_holder or Enrollment.DEFAULT_HOLDER[Enrollment.State(to)]
            holder_reason = reason if new_reason is None else new_reason

        open_round = None
        for number in range(1, n_rounds + 1):
            last = number == n_rounds
            if final == "preparing":
                outcome = "cancelled"
            elif last and final == "awaiting_signature":
                outcome = "open"
            elif last and final == "withdrawn":
                outcome = rng.choice(["withdrawn", "confirmed", "cancelled"])
            elif last:
                outcome = "confirmed"
            else:
                outcome = "confirmed" if rng.random() < 0.6 else "cancelled"
            if state == "submitted" and rng.random() < 0.4:
                t += self.span(10, 50)
                move(t, "in_development")
            t += self.span(1, 25) if state == "preparing" else self.span(3, 30)
            revision = state != "preparing"
            reason = rng.choice(REVISION_REASONS) if revision else "Initial signature"
            method = "paper" if rng.random() < 0.12 else "electronic"
            signature_round = {
                "id": None,
                "public_id": self.uuid(),
                "number": number,
                "is_revision": revision,
                "reason": reason,
                "method": method,
                "opened_at": t,
                "mailed_at": None,
                "closed_at": None,
                "claimed_at": None,
                "events": [
                    [
                        t,
                        "round.opened",
                        {
                            "to": "awaiting_signature",
                            "number": number,
                            "reason": reason,
                            "method": method,
                        },
                        "staff",
                    ]
                ],
            }
            rounds.append(signature_round)
            label = f"Signature round {number}"
            move(t, "awaiting_signature", label, Holder.PROVIDER, label)
            round_events = signature_round["events"]
            if outcome == "open":
                open_round = signature_round
                break
            if outcome == "confirmed":
                if method == "paper":
                    t += self.span(1, 8)
                    signature_round["mailed_at"] = t
                    round_events.append(self._round_mailed(plan, t))
                    t += self.span(3, 25)
                    round_events.append(
                        [t, "round.received", {"from": "mailed", "to": "received"}, "staff"]
                    )
                    closed = "received"
                else:
                    current = "awaiting_signature"
                    if plan.account and rng.random() < 0.3:
                        t += self.span(0.2, 10)
                        signature_round["claimed_at"] = t
                        round_events.append(self._round_claim(plan, t))
                        current = "provider_says_signed"
                        t += self.span(0.1, 3)
                    else:
                        t += self.span(0.3, 15)
                    round_events.append(
                        [t, "round.confirmed", {"from": current, "to": "confirmed"}, "staff"]
                    )
                    closed = "confirmed"
                signature_round.update(state=closed, closed_at=t, state_entered_at=t)
                move(t, "submitted", f"{label} complete", Holder.CMS, "With the contractor")
            else:
                t += self.span(0.5, 15)
                why = (
                    "Enrollment withdrawn" if outcome == "withdrawn" else rng.choice(CANCEL_REASONS)
                )
                data = {"from": "awaiting_signature", "to": "cancelled"}
                if why:
                    data["reason"] = why
                round_events.append([t, "round.cancelled", data, "staff"])
                signature_round.update(state="cancelled", closed_at=t, state_entered_at=t)
                if outcome == "withdrawn":
                    move(t, "withdrawn")
                else:
                    move(t, "preparing", f"{label} cancelled", Holder.FIRM, "")
        if final == "in_development":
            t += self.span(10, 60)
            move(t, "in_development")
        elif final in ("approved", "denied", "rejected", "returned"):
            if rng.random() < 0.3:
                t += self.span(10, 50)
                move(t, "in_development")
            t += self.span(20, 90)
            move(t, final)
        elif final == "withdrawn" and state != "withdrawn":
            t += self.span(1, 60)
            move(t, "withdrawn", rng.choice(["", "Provider changed plans"]))
        if state != final:
            raise AssertionError(f"enrollment planned to {final} ended in {state}")
        low, high = ENROLLMENT_AGE[final]
        shift = self.ago(low, high) - entered
        for event in events:
            event[0] += shift
        for signature_round in rounds:
            for name in ("opened_at", "mailed_at", "closed_at", "claimed_at", "state_entered_at"):
                if signature_round.get(name) is not None:
                    signature_round[name] += shift
            for event in signature_round["events"]:
                event[0] += shift
        enrollment.update(
            created_at=enrollment["created_at"] + shift,
            state=state,
            holder=holder,
            holder_reason=holder_reason[:200],
            state_entered_at=entered + shift,
        )
        for signature_round in rounds:
            signature_round["deadline"] = days_after(
                firm, signature_round["opened_at"], firm.signature_deadline_days
            )
        if open_round is not None:
            self._open_round_state(plan, open_round)
        return enrollment

    def _round_claim(self, plan: Plan, moment: datetime) -> list:
        return [
            moment,
            "round.provider_says_signed",
            {
                "from": "awaiting_signature",
                "to": "provider_says_signed",
                "reason": f"{plan.display_name} says it is signed",
            },
            "provider",
        ]

    def _round_mailed(self, plan: Plan, moment: datetime) -> list:
        if plan.account:
            reason = f"{plan.display_name} says the signed page is in the mail"
            data = {"from": "awaiting_signature", "to": "mailed", "reason": reason}
            return [moment, "round.mailed", data, "provider"]
        return [moment, "round.mailed", {"from": "awaiting_signature", "to": "mailed"}, "staff"]

    def _open_round_state(self, plan: Plan, signature_round: dict) -> None:
        """Where an open round stands now: awaiting, claimed signed, or the paper mailed."""
        rng = self.rng
        opened = signature_round["opened_at"]
        state, entered = "awaiting_signature", opened
        if signature_round["method"] == "paper":
            if rng.random() < 0.6:
                entered = min(opened + self.span(0.5, 6), self.between(opened, self.base, 0.2, 0.9))
                signature_round["mailed_at"] = entered
                signature_round["events"].append(self._round_mailed(plan, entered))
                state = "mailed"
        elif plan.account and rng.random() < 0.4:
            entered = self.between(opened, self.base, 0.1, 0.95)
            signature_round["claimed_at"] = entered
            signature_round["events"].append(self._round_claim(plan, entered))
            state = "provider_says_signed"
        signature_round.update(state=state, state_entered_at=entered)

    # -- the benchmark provider -------------------------------------------------------

    def _choose_bench_provider(self, firm: Firm, plans: list[Plan]) -> None:
        """A provider of the largest firm with open to-dos: a pending connection request
        (not past due) and, if any has one, an open signature round."""

        def pending(plan: Plan) -> bool:
            grant = plan.profiles[0]["grants"][-1]
            return (
                grant["state"] == "awaiting_provider"
                and grant["method"] == "connection_request"
                and grant["deadline"] > self.base
            )

        def signing(plan: Plan) -> bool:
            return any(
                e["state"] == "awaiting_signature" for p in plan.profiles for e in p["enrollments"]
            )

        candidates = [plan for plan in plans if pending(plan)]
        chosen = next((plan for plan in candidates if signing(plan)), candidates[0])
        chosen.account = True
        chosen.email = f"bench-provider@{firm.slug}.example"
        self.bench["provider"] = chosen.email

    # -- rows -----------------------------------------------------------------------

    def _materialize(self, firm: Firm, plan: Plan, admin: Person, events: list) -> None:
        """The client's rows and its timeline's events."""
        rng = self.rng
        tables = self.tables
        staff = plan.staff or admin
        actors = {"staff": staff.id, None: None}
        client_events: list[list] = []  # [time, verb, data, actor, target_type, id, label]
        earliest = self.base
        for profile in plan.profiles:
            for grant in profile["grants"]:
                grant["id"] = tables[AccessGrant].new_id()
                earliest = min(earliest, grant["created_at"])
                label = f"{METHOD_LABEL[grant['method']]} ({profile['label']})"
                for event in grant["events"]:
                    client_events.append([*event, TARGET_GRANT, grant["public_id"], label])
            for enrollment in profile["enrollments"]:
                enrollment["id"] = tables[Enrollment].new_id()
                earliest = min(earliest, enrollment["created_at"])
                label = f"{KIND_LABEL[enrollment['kind']]} ({profile['label']})"
                for event in enrollment["events"]:
                    client_events.append(
                        [*event, TARGET_ENROLLMENT, enrollment["public_id"], label]
                    )
                for signature_round in enrollment["rounds"]:
                    signature_round["id"] = tables[SignatureRound].new_id()
                    label = f"Signature round {signature_round['number']}"
                    for event in signature_round["events"]:
                        client_events.append(
                            [*event, TARGET_ROUND, signature_round["public_id"], label]
                        )
        created = earliest - self.span(1, 20)
        plan.created = created
        display = plan.display_name
        client_events.append([created, "client.created", {}, "staff", TARGET_CLIENT, None, display])
        for profile in plan.profiles:
            organization = profile["organization"]
            profile["created_at"] = created
            if organization is None:
                continue
            first_use = min(
                [g["created_at"] for g in profile["grants"]]
                + [e["created_at"] for e in profile["enrollments"]]
            )
            organization["created_at"] = self.between(created, first_use, 0, 1)
            profile["created_at"] = organization["created_at"]
            client_events.append(
                [
                    organization["created_at"],
                    "organization.added",
                    {},
                    "staff",
                    TARGET_ORGANIZATION,
                    organization["public_id"],
                    organization["legal_name"],
                ]
            )
        if plan.account:
            provider_moves = [e[0] for e in client_events if e[3] == "provider"]
            linked = self.between(created, min(provider_moves, default=self.base), 0.05, 0.95)
            invited = self.between(created, linked, 0.3, 0.99)
            plan.user_id = self._user(plan.email, f"{plan.first} {plan.last}", linked)
            tables[Membership].add(
                id=tables[Membership].new_id(),
                public_id=self.uuid(),
                user_id=plan.user_id,
                firm_id=firm.id,
                role=Role.CLIENT,
                created_at=linked,
            )
            tables[Invitation].add(
                id=tables[Invitation].new_id(),
                public_id=self.uuid(),
                firm_id=firm.id,
                email=plan.email,
                role=Role.CLIENT,
                invited_by_id=staff.id,
                nonce=f"{rng.getrandbits(128):032x}",
                created_at=invited,
                issued_at=invited,
                expires_at=invited + timedelta(days=firm.invitation_days),
                accepted_at=linked,
                accepted_by_id=plan.user_id,
                subject_uuid=plan.public_id,
            )
            client_events.append(
                [invited, "portal.invited", {}, "staff", TARGET_CLIENT, None, display]
            )
            client_events.append(
                [linked, "portal.linked", {}, "provider", TARGET_CLIENT, None, display]
            )
        actors["provider"] = plan.user_id
        if plan.delegate:
            self._delegate(firm, plan, client_events)
        last_activity = created
        for moment, verb, data, actor, target_type, target_id, label in client_events:
            last_activity = max(last_activity, moment)
            events.append(
                [
                    moment,
                    firm.id,
                    actors[actor],
                    verb,
                    target_type,
                    str(target_id or plan.public_id),
                    label,
                    plan.public_id,
                    data,
                ]
            )
        # One I&A login per person: what was drawn for any of their profiles.
        controllers = {profile["ia_controller"] for profile in plan.profiles}
        controller = next(
            (c for c in (IAController.SOMEONE_ELSE, IAController.UNKNOWN) if c in controllers),
            IAController.PROVIDER,
        )
        tables[Client].add(
            ia_controller=controller,
            ia_controller_note="A former biller controls it"
            if controller == IAController.SOMEONE_ELSE
            else "",
            password_reset_likely=any(p["password_reset_likely"] for p in plan.profiles),
            id=plan.id,
            public_id=plan.public_id,
            firm_id=firm.id,
            first_name=plan.first,
            last_name=plan.last,
            credentials=plan.credentials,
            npi=plan.npi,
            email=plan.email,
            phone=f"555-{plan.index % 10_000:04d}",
            next_deadline=NO_DEADLINE,  # computed for the whole firm once its rows are in
            assigned_staff_id=plan.staff.id if plan.staff else None,
            user_id=plan.user_id,
            created_at=created,
            last_activity_at=last_activity,
        )
        for profile in plan.profiles:
            self._profile_rows(firm, plan, profile, staff)

    def _delegate(self, firm: Firm, plan: Plan, client_events: list) -> None:
        tables = self.tables
        delegate_id = tables[Delegate].new_id()
        public_id = self.uuid()
        name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
        moment = self.between(plan.created, self.base, 0, 0.5)
        tables[Delegate].add(
            id=delegate_id,
            public_id=public_id,
            firm_id=firm.id,
            client_id=plan.id,
            name=name,
            email=f"office.{plan.index}@clinic.example",
            title="Office manager",
            user_id=None,
            created_at=moment,
        )
        roles = {}
        for profile in plan.profiles:
            role = CMSRole.ACCESS_MANAGER if self.rng.random() < 0.7 else CMSRole.STAFF_END_USER
            roles[profile["label"]] = role.value
            tables[DelegateRole].add(
                id=tables[DelegateRole].new_id(),
                delegate_id=delegate_id,
                profile_id=profile["id"],
                cms_role=role.value,
            )
        client_events.append(
            [moment, "delegate.saved", {"roles": roles}, "staff", TARGET_DELEGATE, public_id, name]
        )

    def _profile_rows(self, firm: Firm, plan: Plan, profile: dict, staff: Person) -> None:
        tables = self.tables
        organization = profile["organization"]
        if organization is not None:
            tables[Organization].add(
                id=organization["id"],
                public_id=organization["public_id"],
                firm_id=firm.id,
                client_id=plan.id,
                legal_name=organization["legal_name"],
                kind=organization["kind"],
                npi=organization["npi"],
                created_at=organization["created_at"],
            )
        tables[Profile].add(
            id=profile["id"],
            public_id=profile["public_id"],
            firm_id=firm.id,
            client_id=plan.id,
            organization_id=organization["id"] if organization else None,
            kind=Profile.Kind.ORGANIZATIONAL if organization else Profile.Kind.INDIVIDUAL,
            created_at=profile["created_at"],
        )
        for grant in profile["grants"]:
            previous = grant["previous"]
            tables[AccessGrant].add(
                id=grant["id"],
                public_id=grant["public_id"],
                firm_id=firm.id,
                profile_id=profile["id"],
                method=grant["method"],
                requested_role=grant["requested_role"],
                state=grant["state"],
                sent_at=grant["sent_at"],
                deadline=grant["deadline"],
                previous_id=previous["id"] if previous else None,
                created_at=grant["created_at"],
                state_entered_at=grant["state_entered_at"],
            )
        for enrollment in profile["enrollments"]:
            tables[Enrollment].add(
                id=enrollment["id"],
                public_id=enrollment["public_id"],
                firm_id=firm.id,
                profile_id=profile["id"],
                kind=enrollment["kind"],
                state=enrollment["state"],
                holder=enrollment["holder"],
                holder_reason=enrollment["holder_reason"],
                assigned_staff_id=plan.staff.id if plan.staff else None,
                created_at=enrollment["created_at"],
                state_entered_at=enrollment["state_entered_at"],
            )
            for signature_round in enrollment["rounds"]:
                tables[SignatureRound].add(
                    id=signature_round["id"],
                    public_id=signature_round["public_id"],
                    firm_id=firm.id,
                    enrollment_id=enrollment["id"],
                    number=signature_round["number"],
                    is_revision=signature_round["is_revision"],
                    reason=signature_round["reason"],
                    method=signature_round["method"],
                    state=signature_round["state"],
                    opened_at=signature_round["opened_at"],
                    deadline=signature_round["deadline"],
                    mailed_at=signature_round["mailed_at"],
                    closed_at=signature_round["closed_at"],
                    state_entered_at=signature_round["state_entered_at"],
                )
                # One signer, the provider (as the organization's Authorized Official on its
                # profile): the dataset records no other officials.
                tables[Signer].add(
                    id=tables[Signer].new_id(),
                    public_id=uuid.uuid5(signature_round["public_id"], "signer"),
                    firm_id=firm.id,
                    signature_round_id=signature_round["id"],
                    role="provider" if profile["organization"] is None else "authorized_official",
                    name=plan.display_name,
                    pecos_email=plan.email,
                    state=SIGNER_STATE.get(signature_round["state"], "awaiting"),
                    state_entered_at=signature_round["state_entered_at"],
                )

    def _events(self, events: list[list]) -> None:
        """The firm's events in time order (ties keep each timeline's order), ids ascending."""
        events.sort(key=itemgetter(0))
        table = self.tables[AuditEvent]
        for moment, firm_id, actor_id, verb, target_type, target_id, label, client, data in events:
            table.add(
                id=table.new_id(),
                firm_id=firm_id,
                actor_id=actor_id,
                verb=verb,
                target_type=target_type,
                target_id=target_id,
                target_label=label,
                client_uuid=client,
                data=data,
                created_at=moment,
            )

    # -- notifications ----------------------------------------------------------------

    def _notifications(self, firm: Firm, plans: list[Plan], admin: Person, budget: int) -> None:
        """The messages of open steps first, then of recently closed ones, up to `budget`."""
        open_steps, closed_steps = [], []
        recent = self.base - timedelta(days=NOTIFY_RECENT_DAYS)
        for plan in plans:
            for profile in plan.profiles:
                for grant in profile["grants"]:
                    if grant["sent_at"] is None:
                        continue
                    if grant["state"] in AccessGrant.PENDING_STATES:
                        open_steps.append((plan, "grant", grant))
                    elif grant["state_entered_at"] >= recent:
                        closed_steps.append((plan, "grant", grant))
                for enrollment in profile["enrollments"]:
                    for signature_round in enrollment["rounds"]:
                        if signature_round["state"] in SignatureRound.OPEN_STATES:
                            open_steps.append((plan, "round", signature_round))
                        elif signature_round["state_entered_at"] >= recent:
                            closed_steps.append((plan, "round", signature_round))
        # Open steps in random order until OPEN_SHARE of the budget is used, then the most
        # recently closed, then the open steps left.
        self.rng.shuffle(open_steps)
        closed_steps.sort(key=lambda step: step[2]["state_entered_at"], reverse=True)
        left = budget
        reserve = budget - int(budget * NOTIFY_OPEN_SHARE)
        queue = iter(open_steps)
        for phase in ("open", "closed", "rest"):
            steps = closed_steps if phase == "closed" else queue
            for plan, kind, obj in steps:
                messages = (
                    self._grant_messages(firm, obj)
                    if kind == "grant"
                    else self._round_messages(firm, obj)
                )
                for message in messages:
                    left -= self._notification_rows(firm, plan, admin, kind, obj, message, left)
                    if left <= 0:
                        return
                if phase == "open" and left <= reserve:
                    break

    def _grant_messages(self, firm: Firm, grant: dict):
        """(kind, step, due, to: "provider"|"staff", scheduled at, reminder, essential)."""
        sent = grant["sent_at"]
        state = grant["state"]
        # Reminders stop when the provider claims it done or the request closes.
        stop = (
            None
            if state == "awaiting_provider"
            else grant["claimed_at"] or grant["state_entered_at"]
        )
        deadline = grant["deadline"]
        yield "grant.requested", "sent", sent, "provider", sent, False, True
        clock = Clock(firm, None, deadline=deadline, start=sent)
        for kind, days, to in (
            ("grant.reminder", firm.grant_reminder_days, "provider"),
            ("grant.staff_alert", firm.grant_staff_alert_days, "staff"),
        ):
            for _day, step, due in clock.moments(parse_day_list(days)):
                yield kind, step, due, to, sent, stop, True
        claim = grant["claimed_at"]
        if claim is not None:
            yield "grant.verify", f"claim-{claim:%Y%m%d%H%M%S}", claim, "staff", claim, False, True
        entered = grant["state_entered_at"]
        if state == "active":
            yield "grant.active", "active", entered, "provider", entered, False, False
        elif state == "expired":
            yield "grant.expired", "expired", entered, "provider", entered, False, True
            yield "grant.expired_staff", "expired", entered, "staff", entered, False, True

    def _round_messages(self, firm: Firm, signature_round: dict):
        opened = signature_round["opened_at"]
        deadline = signature_round["deadline"]
        state = signature_round["state"]
        mailed = signature_round["method"] == "paper"
        if state == "awaiting_signature":
            stop = None
        else:
            stop = signature_round["claimed_at"] or signature_round["closed_at"]
        # A statement in the mail keeps its staff alerts until the contractor has it.
        staff_stop = signature_round["closed_at"] if mailed else stop
        yield "round.opened", "opened", opened, "provider", opened, False, True
        clock = Clock(firm, None, deadline=deadline, start=opened)
        for _day, step, due in clock.moments(parse_day_list(firm.round_reminder_days)):
            yield "round.reminder", step, due, "provider", opened, stop, True
        for _day, step, due in clock.moments(parse_day_list(firm.round_staff_alert_days)):
            yield "round.staff_alert", step, due, "staff", opened, staff_stop, True
        yield "round.overdue", "deadline", deadline, "staff", opened, staff_stop, True
        claim = signature_round["claimed_at"]
        if claim is not None:
            yield "round.verify", f"claim-{claim:%Y%m%d%H%M%S}", claim, "staff", claim, False, True
        if state in ("confirmed", "received"):
            closed = signature_round["closed_at"]
            yield "round.signed", "signed", closed, "provider", closed, False, False

    def _notification_rows(self, firm, plan, admin, kind, obj, message, left: int) -> int:
        kind_name, step, due, to, scheduled_at, stop, essential = message
        reminder = stop is not False
        stopped = reminder and stop is not None
        if to == "provider":
            people = [(plan.user_id, plan.email)]
            link = self.dashboard
        else:
            staff = plan.staff or admin
            people = [(staff.id, staff.email)]
            link = self.client_link.format(plan.public_id)
        subject_type = "accessgrant" if kind == "grant" else "signatureround"
        subject_id = str(obj["public_id"])
        title = NOTIFICATION_TITLES[kind_name]
        body = f"{title}. {plan.display_name}."
        table = self.tables[Notification]
        written = 0
        for user_id, email in people:
            channels = ["email"] + (["in_app"] if user_id is not None else [])
            for channel in channels:
                if written >= left:
                    return written
                who = user_id if user_id is not None else email
                key = ":".join([kind_name, subject_type, subject_id, step, channel, str(who)])
                sent_at = read_at = None
                attempts = 0
                if channel == "email":
                    if stopped and due >= stop:
                        state = "cancelled"
                    elif due > self.base - BACKLOG:
                        state = "scheduled"
                    else:
                        state, sent_at, attempts = "sent", due, 1
                else:
                    state = "cancelled" if stopped else "scheduled"
                    if due <= self.base and self.rng.random() < 0.5:
                        read_at = min(self.base, due + self.span(0, 3))
                table.add(
                    id=table.new_id(),
                    public_id=self.uuid(),
                    firm_id=firm.id,
                    recipient_id=user_id,
                    to_email=email,
                    channel=channel,
                    kind=kind_name,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    step=step,
                    idempotency_key=key,
                    due_at=due,
                    state=state,
                    essential=essential,
                    title=title,
                    body_text=body,
                    body_html=f"<p>{body}</p>" if channel == "email" else "",
                    link_path=link,
                    attempts=attempts,
                    sent_at=sent_at,
                    message_id=message_id_for(key),
                    read_at=read_at,
                    created_at=min(scheduled_at, due),
                )
                written += 1
        return written


# --- reset ----------------------------------------------------------------------------

SEEDED_MODELS = [
    Firm,
    User,
    Membership,
    Invitation,
    AuditEvent,
    Client,
    Organization,
    Profile,
    Delegate,
    DelegateRole,
    AccessGrant,
    Enrollment,
    SignatureRound,
    Signer,
    Notification,
    OpenStep,
]


def reset() -> None:
    """Delete every row of the seeded tables and of the tables that refer to them (users'
    emails and authenticators, the admin log...), and the sessions (user ids start again
    from 1): TRUNCATE ... CASCADE on PostgreSQL."""
    tables = [model._meta.db_table for model in [*SEEDED_MODELS, Session]]
    statements = connection.ops.sql_flush(
        no_style(), tables, reset_sequences=True, allow_cascade=True
    )
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def fill_read_models() -> None:
    """Each client's next deadline and open steps, as the transitions keep them: one UPDATE
    and one INSERT ... SELECT once the rows and their planner statistics are in (before
    ANALYZE, the planner scans for every client)."""
    refresh_next_deadline(Client.objects.all())
    fill_open_steps()


def analyze(models=SEEDED_MODELS) -> None:
    """Fresh planner statistics for the big tables (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def is_built(size: Size) -> bool:
    """The dataset of this size is in the database (its firms and clients, to the count)."""
    from clients.models import Client
    from portal.models import Firm

    return Firm.objects.count() == size.firms and Client.objects.count() == size.clients
