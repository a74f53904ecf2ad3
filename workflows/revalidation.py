"""Medicare revalidation due dates: entered by hand, or read from CMS's public list.

CMS sets each provider's revalidation due date at the end of a month, posts it up to seven
months ahead and shows "TBD" before; a missed date leads to a stay of enrollment, then
deactivation. Here a revalidation is an enrollment of kind revalidation on a profile: its
`due_on` is CMS's date, its `deadline` the end of that day in the firm's zone, the clock the
caseload sorts by (`open_steps.soonest_open_deadline`).

- `revalidation_set_due` records one profile's date and schedules the staff alerts before it.
- `parse_csv` reads CMS's "Revalidation Due Date List" file (one line per enrollment: an NPI
  may be listed once per state and specialty); `plan` says, profile by profile, what the
  file would change for a firm, writing nothing; `apply` writes it. Importing the same file
  twice changes nothing the second time.
"""

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clients.models import Client, Profile
from notifications.outbox import cancel, schedule
from portal import audit
from portal.models import Firm, User, parse_day_list

from . import services
from .deadlines import end_of_day
from .errors import TransitionError
from .models import Enrollment, superseded
from .notify.common import Clock, _long_date, _staff_message, reminders
from .notify.credentials import REVALIDATION_ALERT_KINDS
from .open_steps import one_refresh

# A date CMS gave more than 60 days ago is a stay of enrollment already under way (or a
# stale list): it is not a clock to start now; record what happened instead.
DUE_MAX_DAYS_BACK = 60
# CMS posts due dates at most seven months ahead: a date over a year away is a typo.
DUE_MAX_DAYS_AHEAD = 366
ALERT_KINDS = REVALIDATION_ALERT_KINDS
# The application that carries a profile's due date: an open one, or one rejected and to be
# resubmitted. Only an approved revalidation has met its date: a list imported again after
# a withdrawal or a return starts a new one.
CARRIER_STATES = (*Enrollment.OPEN_STATES, Enrollment.State.REJECTED)
DONE = Enrollment.State.APPROVED


def _today(firm: Firm) -> date:
    return timezone.now().astimezone(firm.zone).date()


def due_refusal(firm: Firm, due_on: date, today: date | None = None) -> str | None:
    """Why `due_on` cannot be a profile's new revalidation date, or None."""
    today = today or _today(firm)
    if due_on < today - timedelta(days=DUE_MAX_DAYS_BACK):
        return (
            f"The due date {due_on:%B %-d, %Y} is more than {DUE_MAX_DAYS_BACK} days ago: "
            "CMS has likely stayed the enrollment already. Record what happened since instead."
        )
    if due_on > today + timedelta(days=DUE_MAX_DAYS_AHEAD):
        return (
            f"The due date {due_on:%B %-d, %Y} is more than a year away: CMS posts due dates "
            "at most seven months ahead. Check the date."
        )
    return None


# --- one profile's date -----------------------------------------------------------------


@transaction.atomic
@one_refresh
def revalidation_set_due(
    *, profile: Profile, due_on: date | None, actor: User | None
) -> Enrollment | None:
    """Record the revalidation due date CMS gave `profile`; returns the revalidation that
    carries it, or None when nothing carries it.

    1. No date ("TBD"): CMS has not set one yet. Nothing changes.
    2. The open revalidation takes the date; the date it already has changes nothing (no
       event, no new alerts).
    3. With none open, an approved revalidation with this very date means the list is older
       than the work done: a re-import of an old file must not reopen it. Nothing changes.
    4. Otherwise the date is checked (`due_refusal`), a revalidation is started if none is
       open, the date and its clock are set, and the staff alerts are rescheduled.
    """
    if due_on is None:
        return None
    firm = profile.firm
    enrollment = (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("firm", "profile__client", "profile__organization")
        .filter(profile=profile, kind=Enrollment.Kind.REVALIDATION, state__in=CARRIER_STATES)
        .exclude(superseded())
        .first()
    )
    if enrollment is not None and enrollment.due_on == due_on:
        return enrollment
    if (
        enrollment is None
        and Enrollment.objects.filter(
            profile=profile, kind=Enrollment.Kind.REVALIDATION, due_on=due_on, state=DONE
        ).exists()
    ):
        return None
    if refusal := due_refusal(firm, due_on):
        raise TransitionError(refusal)
    if enrollment is None:
        enrollment = services.enrollment_create(
            profile=profile, kind=Enrollment.Kind.REVALIDATION, actor=actor
        )
    old = enrollment.due_on
    enrollment.due_on = due_on
    enrollment.deadline = end_of_day(firm, due_on)
    enrollment.save(update_fields=["due_on", "deadline"])
    due_alerts_stop(enrollment)
    if enrollment.revalidation_clock_runs:
        due_alerts_schedule(enrollment)
    services._record(
        "enrollment.revalidation_due",
        enrollment,
        actor=actor,
        data={"due_on": due_on.isoformat(), "from": old.isoformat() if old else None},
    )
    return enrollment


# --- the staff alerts before the date ---------------------------------------------------


def due_alerts_schedule(enrollment: Enrollment) -> None:
    """The staff side hears of the date on the firm's expiry cadence before it, and on the
    day. Each step carries the date and when it was set, so a new date has new messages
    (and a date set back to an earlier value gets its alerts again)."""
    client = Client.objects.select_related("firm", "assigned_staff").get(
        pk=enrollment.profile.client_id
    )
    firm = client.firm
    now = timezone.now()
    deadline = enrollment.deadline
    due = _long_date(firm, deadline)
    label = enrollment.profile.label
    # The date, and the minute it was set: at most 32 characters with "before-365-".
    stamp = f"{enrollment.due_on}-{now:%y%m%d%H%M}"
    stakes = "A missed date leads to a stay of enrollment, then deactivation."
    clock = Clock(firm, now, deadline=deadline, stamp=stamp)
    messages = reminders(
        client,
        enrollment,
        clock,
        parse_day_list(firm.credential_reminder_days),
        kind="revalidation.due_alert",
        context=lambda days, moment: {
            "subject": f"{client.display_name}: Medicare revalidation due in {days} days",
            "headline": "A Medicare revalidation is due soon",
            "lines": [
                f"CMS set {due} as the revalidation due date of {client.display_name} ({label}).",
                f"Submit it in PECOS before then. {stakes}",
            ],
            "profile": label,
            "deadline": deadline,
        },
    )
    if deadline >= now:
        messages += _staff_message(
            client,
            enrollment,
            kind="revalidation.due_today",
            step=f"due-day-{stamp}",
            due=clock.last_day(),
            context={
                "subject": f"{client.display_name}: Medicare revalidation due today",
                "headline": "A Medicare revalidation is due today",
                "lines": [
                    f"The revalidation of {client.display_name} ({label}) is due at CMS "
                    f"today. {stakes}"
                ],
                "profile": label,
                "deadline": deadline,
            },
        )
    schedule(messages)


def due_alerts_stop(enrollment: Enrollment) -> None:
    """The alerts still waiting: the date changed, or the revalidation is done."""
    cancel(subject_type="enrollment", subject_ids=[str(enrollment.public_id)], kinds=ALERT_KINDS)


# --- CMS's list -------------------------------------------------------------------------

NPI_COLUMN = "National Provider Identifier"
DUE_COLUMN = "Revalidation Due Date"
ADJUSTED_COLUMN = "Adjusted Due Date"
REQUIRED = [NPI_COLUMN, DUE_COLUMN, ADJUSTED_COLUMN]
NAME_COLUMNS = ["First Name", "Last Name", "Organization Name"]
# CMS's full list has millions of lines: a firm downloads it filtered (by state, or by NPI).
MAX_ROWS = 50_000
UNKNOWN = {"", "TBD", "N/A", "NA"}
NPI_PATTERN = re.compile(r"[0-9]{10}", flags=re.ASCII)


@dataclass
class Listing:
    """Every line of the file about one NPI: its earliest known due date."""

    npi: str
    name: str
    due_on: date | None
    lines: list[int] = field(default_factory=list)


@dataclass
class ParsedList:
    listings: dict[str, Listing]
    problems: list[str] = field(default_factory=list)  # "Line 7: ..." (skipped lines)
    error: str = ""  # the file as a whole is refused

    def only(self, npis) -> "ParsedList":
        return ParsedList(listings={npi: self.listings[npi] for npi in npis})

    def as_data(self) -> list:
        """A compact form to keep in the session between the preview and the confirmation."""
        return [
            [item.npi, item.name, item.due_on.isoformat() if item.due_on else "", item.lines]
            for item in self.listings.values()
        ]

    @classmethod
    def from_data(cls, data: list) -> "ParsedList":
        return cls(
            listings={
                npi: Listing(
                    npi=npi, name=name, due_on=date.fromisoformat(due) if due else None, lines=lines
                )
                for npi, name, due, lines in data
            }
        )


def _cms_date(value: str) -> date | None:
    """ "07/31/2026" (CMS's form) or "2026-07-31"; "TBD" or nothing: not known yet."""
    value = value.strip()
    if value.upper() in UNKNOWN:
        return None
    for pattern in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise ValueError(value)


def parse_csv(text: str) -> ParsedList:
    """Read CMS's list: per NPI, the earliest due date its lines give (the adjusted date of
    a line when CMS moved it, else its due date). Lines that cannot be read are skipped
    and said why."""
    if "\x00" in text:
        return ParsedList(listings={}, error="This is not a CSV file: save the list as CSV.")
    reader = csv.DictReader(io.StringIO(text))
    try:
        headers = [(name or "").strip().lower() for name in reader.fieldnames or []]
    except csv.Error:
        return ParsedList(listings={}, error="This is not a CSV file: save the list as CSV.")
    if not headers:
        return ParsedList(listings={}, error="The file is empty.")
    missing = [name for name in REQUIRED if name.lower() not in headers]
    if missing:
        return ParsedList(
            listings={},
            error="This is not CMS's Revalidation Due Date List: it has no column "
            f"{', '.join(missing)}.",
        )
    reader.fieldnames = headers
    listings: dict[str, Listing] = {}
    problems = []
    try:
        for count, raw in enumerate(reader, start=1):
            if count > MAX_ROWS:
                return ParsedList(
                    listings={},
                    error=f"At most {MAX_ROWS:,} lines per file: CMS's full list is much "
                    "longer. Download it filtered to your providers' states or NPIs.",
                )
            line = reader.line_num
            values = {key: (value or "").strip() for key, value in raw.items() if key}
            npi = values.get(NPI_COLUMN.lower(), "")
            if not NPI_PATTERN.fullmatch(npi):
                problems.append(f"Line {line}: the NPI “{npi}” is not 10 digits; skipped.")
                continue
            try:
                adjusted = _cms_date(values.get(ADJUSTED_COLUMN.lower(), ""))
                due_on = adjusted or _cms_date(values.get(DUE_COLUMN.lower(), ""))
            except ValueError as exc:
                problems.append(f"Line {line}: “{exc}” is not a date (MM/DD/YYYY or TBD); skipped.")
                continue
            first, last, organization = (values.get(name.lower(), "") for name in NAME_COLUMNS)
            listing = listings.setdefault(
                npi,
                Listing(npi=npi, name=organization or f"{first} {last}".strip(), due_on=None),
            )
            listing.lines.append(line)
            if due_on and (listing.due_on is None or due_on < listing.due_on):
                listing.due_on = due_on
    except csv.Error as exc:
        return ParsedList(listings={}, error=f"This is not a readable CSV file ({exc}).")
    if not listings and not problems:
        return ParsedList(listings={}, error="The file has no lines below its header.")
    return ParsedList(listings=listings, problems=problems)


# --- what a list would change for a firm ------------------------------------------------

STATUS_ORDER = ("changed", "new", "error", "tbd", "unchanged")


@dataclass
class PlannedDue:
    """One of the firm's profiles listed in the file."""

    profile: Profile
    listing: Listing
    current: date | None  # the open revalidation's due date
    status: str  # new | changed | unchanged | tbd | error
    reason: str = ""

    @property
    def client(self) -> Client:
        return self.profile.client

    @property
    def new(self) -> date | None:
        return self.listing.due_on


@dataclass
class RevalidationPlan:
    rows: list[PlannedDue]
    unmatched: list[Listing]
    problems: list[str]

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)

    @property
    def summary(self) -> dict[str, int]:
        return {status: self.count(status) for status in STATUS_ORDER}

    @property
    def writable(self) -> list[PlannedDue]:
        return [row for row in self.rows if row.status in ("new", "changed")]

    @property
    def matched_npis(self) -> list[str]:
        return sorted({row.listing.npi for row in self.rows})

    @property
    def fingerprint(self) -> str:
        """Changes when what would be written changes (the data moved since the preview)."""
        digest = hashlib.sha256()
        for row in sorted(self.rows, key=lambda row: row.profile.pk):
            digest.update(f"{row.profile.pk}:{row.status}:{row.current}:{row.new};".encode())
        return digest.hexdigest()


def _profiles_by_npi(firm: Firm, npis: list[str]) -> dict[str, list[Profile]]:
    """The firm's profiles each NPI names: a client's individual profile by its NPI, an
    organization's profile by the organization's (several clients may share a group)."""
    found: dict[str, list[Profile]] = {}
    chunk = 5000  # two parameters per NPI: well under PostgreSQL's 65,535
    for start in range(0, len(npis), chunk):
        part = npis[start : start + chunk]
        for profile in (
            Profile.objects.filter(firm=firm)
            .filter(
                Q(kind=Profile.Kind.INDIVIDUAL, client__npi__in=part)
                | Q(organization__npi__in=part)
            )
            .select_related("firm", "client", "organization")
            .order_by("client__last_name", "client__first_name", "kind", "pk")
        ):
            npi = profile.organization.npi if profile.organization else profile.client.npi
            found.setdefault(npi, []).append(profile)
    return found


def plan(*, firm: Firm, parsed: ParsedList) -> RevalidationPlan:
    """Match the list's NPIs with the firm's profiles and say what each would get."""
    by_npi = _profiles_by_npi(firm, list(parsed.listings))
    profiles = [profile for group in by_npi.values() for profile in group]
    open_due: dict[int, date | None] = {}
    closed_dates: dict[int, set[date]] = {}
    # Oldest first, so that a profile's newest carrier is the one kept; a superseded
    # rejection carries nothing.
    for profile_id, state, due_on in (
        Enrollment.objects.filter(profile__in=profiles, kind=Enrollment.Kind.REVALIDATION)
        .exclude(superseded())
        .order_by("created_at", "pk")
        .values_list("profile_id", "state", "due_on")
    ):
        if state in CARRIER_STATES:
            open_due[profile_id] = due_on
        elif due_on and state == DONE:
            closed_dates.setdefault(profile_id, set()).add(due_on)
    today = _today(firm)
    rows, unmatched = [], []
    for npi, listing in parsed.listings.items():
        if npi not in by_npi:
            unmatched.append(listing)
            continue
        for profile in by_npi[npi]:
            current = open_due.get(profile.pk)
            new = listing.due_on
            row = PlannedDue(profile=profile, listing=listing, current=current, status="tbd")
            if new is None:
                pass
            elif new == current or (
                profile.pk not in open_due and new in closed_dates.get(profile.pk, ())
            ):
                row.status = "unchanged"
            elif refusal := due_refusal(firm, new, today):
                row.status, row.reason = "error", refusal
            else:
                row.status = "new" if current is None else "changed"
            rows.append(row)
    rows.sort(key=lambda row: (STATUS_ORDER.index(row.status), row.client.display_name))
    return RevalidationPlan(rows=rows, unmatched=unmatched, problems=parsed.problems)


@transaction.atomic
@one_refresh
def apply(*, firm: Firm, parsed: ParsedList, actor: User | None) -> dict[str, int]:
    """Write every new and changed date of the list for `firm`, all or nothing."""
    planned = plan(firm=firm, parsed=parsed)
    for row in planned.writable:
        revalidation_set_due(profile=row.profile, due_on=row.new, actor=actor)
    counts = {"new": planned.count("new"), "changed": planned.count("changed")}
    audit.record("revalidations.imported", actor=actor, firm=firm, data=counts)
    return counts
