"""The stuck report, computed by the database.

It reads the firm's open steps (`workflows.models.OpenStep`, kept by the transitions): each
stuck rule is one query part over its rule's rows, a range scan by how long they waited or by
their clock, filtered by the rule's thresholds compared with now and by the report's
filters, its client and profile joined, shaped to the same columns; the parts are UNIONed,
ordered by urgency and cut with a keyset cursor. Counts (by stage and age bucket, by staff
member, by holder) are one grouped UNION. Nothing loops over all rows in Python: Python
only formats the page it shows.
"""

import base64
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from portal.models import Firm, Membership, User
from workflows.models import Holder, OpenStep

from .stuck import AGE_BUCKETS, REASONS, STAGES, StuckRules

COLUMNS = [
    "item_kind",
    "item_stage",
    "item_reason",
    "item_holder",
    "row_pk",
    "object_public_id",
    "client_public_id",
    "client_first",
    "client_last",
    "client_credentials",
    "organization",
    "entered_at",
    "item_deadline",
    "assignee_public_id",
    "assignee_name",
    "assignee_email",
    "last_activity",
    "urgency_at",
]
PAGE_SIZE = 50


@dataclass(frozen=True)
class ReportFilters:
    stage: str = ""
    staff: str = ""  # a member's public id; "" = everyone in scope
    holder: str = ""
    reason: str = ""
    age: str = ""  # one of the AGE_BUCKETS labels


def _text(value: str) -> Value:
    return Value(value, output_field=CharField())


def _bucket(field: str, now: datetime) -> Case:
    whens = []
    for label, low, _high in reversed(AGE_BUCKETS):
        whens.append(When(**{f"{field}__lte": now - timedelta(days=low)}, then=Value(label)))
    return Case(*whens, default=Value(AGE_BUCKETS[0][0]), output_field=CharField())


def _days(moment: datetime, days: int) -> datetime:
    return moment - timedelta(days=days)


# "Most urgent first" means what is about to be lost first: items with a clock (a request
# that expires, a signature window) sort by their deadline; items that are merely slow sort
# after every clock, by how long they have been past their threshold. A slow item's sort key
# is the moment it became stuck pushed this far ahead (past any real deadline), so one
# ordered column and the keyset cursor keep working.
SLOW_AFTER_CLOCKS = timedelta(days=366 * 1000)
ORDER = ("urgency_at", "kind", "object_id")

Rule = OpenStep.Rule
CLOCK = F("deadline")
NO_DEADLINE = Cast(Value(None), DateTimeField())  # typed: a CASE of NULLs alone is text
# A quiet client's time is its last activity, which moves without a transition: read from
# the client (joined for the quiet clients, and for the rows shown).
LAST_ACTIVITY = F("client__last_activity_at")


def _plus(days: int, since=None) -> ExpressionWrapper:
    """The sort key of a slow item: when it passed its threshold, after every clock."""
    return ExpressionWrapper(
        (since or F("since")) + timedelta(days=days) + SLOW_AFTER_CLOCKS,
        output_field=DateTimeField(),
    )


def _past(moment: datetime, then: str, otherwise: str, field: str = "deadline") -> Case:
    """A reason that turns once `field` passes `moment`."""
    return Case(
        When(**{f"{field}__lte": moment}, then=Value(then)),
        default=Value(otherwise),
        output_field=CharField(),
    )


@dataclass(frozen=True)
class Listed:
    """How a stuck rule lists its open steps: which (compared with now and the firm's
    thresholds), why, the deadline shown, and where in "most urgent first"."""

    when: Q
    reason: str | Case
    urgency: Any
    deadline: Any = CLOCK
    # The rule's rows in the order of `urgency`, by the columns of one of the table's
    # indexes: the page reads each rule's first rows only.
    order: tuple = ("since",)


BY_CLOCK = ("deadline",)


def listing(firm: Firm, rules: StuckRules, now: datetime) -> dict[str, Listed]:
    """Each stuck rule over its rows of `OpenStep` (what state decided is in the rows; this
    compares their times). Every condition is a range of one of the table's indexes."""
    near = now + timedelta(days=rules.request_near_deadline)
    revalidation_near = now + timedelta(days=rules.revalidation_due)
    # A credential expiring within the threshold, or expired, whatever else is going on
    # with it (a renewal asked for, sent, refused): listed once, as expiring or expired.
    today = now.astimezone(firm.zone).date()
    expiring = Q(expires_on__lte=today + timedelta(days=rules.credential_expiring))

    def slow(days: int) -> Q:
        return Q(since__lte=_days(now, days))

    steps = {
        Rule.ACCESS_PENDING: Listed(
            Q(deadline__lte=near) | slow(rules.access_pending),
            _past(near, "near_deadline", "waiting_long"),
            Coalesce(CLOCK, _plus(rules.access_pending)),
            order=(F("deadline").asc(nulls_last=True), "since"),
        ),
        # Not sent again: always listed, already lost (slow, not a running clock).
        Rule.ACCESS_EXPIRED: Listed(Q(), "expired_not_resent", _plus(0)),
        Rule.VERIFY: Listed(slow(rules.verify), "unverified", _plus(rules.verify)),
        Rule.VERIFY_ROUND: Listed(slow(rules.verify), "unverified", _plus(rules.verify)),
        # Every open round not yet with the firm to verify, whatever its method: past the
        # deadline first; otherwise after the firm's threshold.
        Rule.SIGNATURE: Listed(
            Q(deadline__lte=now) | slow(rules.signature),
            _past(now, "past_deadline", "waiting_long"),
            CLOCK,
            order=BY_CLOCK,
        ),
        # Clocks of their own: a development response due soon (or missed), and a denial
        # whose reconsideration window is open (always listed: it is what is about to be
        # lost).
        Rule.DEVELOPMENT: Listed(
            Q(deadline__lte=now + timedelta(days=rules.development_due)),
            _past(now, "past_response_date", "response_due"),
            CLOCK,
            order=BY_CLOCK,
        ),
        # The firm's move, not a running clock: always listed.
        Rule.REJECTED: Listed(Q(), "rejected_not_resubmitted", _plus(0), NO_DEADLINE),
        Rule.RECONSIDERATION: Listed(Q(), "reconsideration_window", CLOCK, order=BY_CLOCK),
        # A revalidation's due date at CMS: a clock (a missed one stops the provider's
        # billing), listed from the firm's threshold, soonest first.
        Rule.REVALIDATION: Listed(
            Q(deadline__lte=revalidation_near), "revalidation_due", CLOCK, order=BY_CLOCK
        ),
        # Credentials: one on file expiring within the threshold (or expired: first, being
        # the oldest clock), a document the provider owes due soon or overdue, and one the
        # provider sent that nobody reviewed.
        Rule.CREDENTIAL: Listed(
            expiring,
            Case(
                When(expires_on__lt=today, then=Value("credential_expired")),
                default=Value("credential_expires_soon"),
                output_field=CharField(),
            ),
            CLOCK,
            order=BY_CLOCK,
        ),
        Rule.DOCUMENT: Listed(
            Q(deadline__lte=now + timedelta(days=rules.document_due)) & ~expiring,
            _past(now, "document_overdue", "document_due_soon"),
            CLOCK,
            order=BY_CLOCK,
        ),
        Rule.DOCUMENT_REVIEW: Listed(
            slow(rules.verify) & ~expiring, "document_unreviewed", _plus(rules.verify)
        ),
        # A revalidation being prepared near its due date is listed by its clock.
        Rule.PREPARING: Listed(
            slow(rules.preparing) & ~Q(deadline__lte=revalidation_near),
            "slow_stage",
            _plus(rules.preparing),
            NO_DEADLINE,
        ),
        Rule.SUBMITTED: Listed(
            slow(rules.submitted), "slow_stage", _plus(rules.submitted), NO_DEADLINE
        ),
        Rule.IN_DEVELOPMENT: Listed(
            slow(rules.in_development), "slow_stage", _plus(rules.in_development), NO_DEADLINE
        ),
    }
    # A quiet client (open work, nothing moved for a while) counts once: only when none of
    # its steps is already on the list. The quiet clients are one range of the clients'
    # activity index; the probe reads one client's rows.
    listed = _any_of(steps)
    steps[Rule.IDLE_CLIENT] = Listed(
        Q(client__firm=firm, client__last_activity_at__lte=_days(now, rules.idle_client))
        & ~Q(Exists(OpenStep.objects.filter(listed, client=OuterRef("client")))),
        "no_activity",
        _plus(rules.idle_client, LAST_ACTIVITY),
        NO_DEADLINE,
        order=(LAST_ACTIVITY,),
    )
    return steps


def _any_of(steps: dict[str, Listed]) -> Q:
    """A row any of these rules lists now."""
    return reduce(operator.or_, (Q(item.when, rule=rule) for rule, item in steps.items()))


def _listed(queryset: QuerySet, steps: dict[str, Listed]) -> QuerySet:
    """The columns each rule computes (its reason, deadline, sort key; the time in stage)."""

    def by_rule(name: str, output):
        # Rules that compute it alike share one branch: a shorter CASE to build and run.
        rules_of: dict = {}
        for rule, item in steps.items():
            rules_of.setdefault(getattr(item, name), []).append(rule)
        values = [_text(value) if isinstance(value, str) else value for value in rules_of]
        if len(values) == 1:
            return values[0]
        whens = [
            When(rule__in=rules, then=value)
            for value, rules in zip(values[1:], list(rules_of.values())[1:], strict=True)
        ]
        return Case(*whens, default=values[0], output_field=output)

    return queryset.annotate(
        item_reason=by_rule("reason", CharField()),
        item_deadline=by_rule("deadline", DateTimeField()),
        urgency_at=by_rule("urgency", DateTimeField()),
        entered_at=Case(
            When(rule=Rule.IDLE_CLIENT, then=LAST_ACTIVITY),
            default=F("since"),
            output_field=DateTimeField(),
        )
        if Rule.IDLE_CLIENT in steps
        else F("since"),
    )


def _shown(queryset: QuerySet) -> QuerySet:
    """COLUMNS, with the client, its assignee and the profile's organization joined: for
    the rows shown only (their names change without a transition)."""
    return queryset.annotate(
        item_kind=F("kind"),
        item_stage=F("stage"),
        item_holder=F("holder"),
        row_pk=F("object_id"),
        client_public_id=F("client__public_id"),
        client_first=F("client__first_name"),
        client_last=F("client__last_name"),
        client_credentials=F("client__credentials"),
        organization=F("profile__organization__legal_name"),
        assignee_public_id=F("assignee__public_id"),
        assignee_name=F("assignee__full_name"),
        assignee_email=F("assignee__email"),
        last_activity=F("client__last_activity_at"),
    ).values(*COLUMNS)


# --- filters, page, counts -------------------------------------------------------------


def _filtered(steps: QuerySet, filters: ReportFilters, *, scope_staff, now) -> QuerySet:
    for staff in (scope_staff, filters.staff):
        if staff:  # their clients' steps
            steps = steps.filter(assignee__public_id=staff)
    if filters.stage:
        steps = steps.filter(stage=filters.stage)
    if filters.holder:
        steps = steps.filter(holder=filters.holder)
    if filters.reason:
        steps = steps.filter(item_reason=filters.reason)
    bucket = next((b for b in AGE_BUCKETS if b[0] == filters.age), None)
    if bucket:
        _label, low, high = bucket
        steps = steps.filter(entered_at__lte=now - timedelta(days=low))
        if high is not None:
            steps = steps.filter(entered_at__gt=now - timedelta(days=high + 1))
    return steps


def encode_cursor(row: dict) -> str:
    text = f"{row['urgency_at'].isoformat()}|{row['item_kind']}|{row['row_pk']}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str, int] | None:
    try:
        moment, kind, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(moment), kind, int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


def _after(queryset: QuerySet, position) -> QuerySet:
    urgency, kind, pk = position
    return queryset.filter(
        Q(urgency_at__gt=urgency)
        | Q(urgency_at=urgency, kind__gt=kind)
        | Q(urgency_at=urgency, kind=kind, object_id__gt=pk)
    )


@dataclass
class StuckReport:
    """The firm's open steps that are stuck now, as `parts`: the steps with a rule of their
    own (the table alone, no joins) and the quiet clients (joined to their clients); and
    the ways the page, the CSV and the weekly email read them."""

    firm: Firm
    rules: StuckRules
    now: datetime
    parts: list[QuerySet]
    listing: dict[str, Listed]
    by_rule: dict[str, QuerySet]  # the same rows, one queryset per rule

    def _chosen(self, order: tuple, *, limit: int | None = None, after=None) -> QuerySet:
        """COLUMNS of the first `limit` rows in `order` (all of them without a limit): each
        part ranks its own rows in the table alone, then only those chosen are joined to
        their clients (one query: the rankings are its subqueries)."""
        # Each part cut to its first rows; SQLite cannot cut the members of a UNION, and
        # ranks the parts whole (its tables are small).
        cut = limit if connection.features.supports_slicing_ordering_in_compound else None
        if cut and order == ORDER:
            # Each rule's first rows, read in its index's order (the same as its sort key's):
            # a few rows per rule, however many are stuck.
            parts = [
                part.order_by(*self.listing[rule].order, "object_id")
                for rule, part in self.by_rule.items()
            ]
        else:
            parts = [part.order_by(*order) if cut else part for part in self.parts]
        chosen = []
        for part in parts:
            ranked = (_after(part, after) if after else part).values("pk")
            chosen.append(ranked[:cut] if cut else ranked)
        rows = OpenStep.objects.filter(pk__in=chosen[0].union(*chosen[1:], all=True))
        return _shown(_listed(rows, self.listing)).order_by(*order)

    def rows(self, *, cursor: str = "", limit: int = PAGE_SIZE) -> tuple[list[dict], str]:
        """One page of stuck items, most urgent first, and the next page's cursor ("")."""
        position = decode_cursor(cursor) if cursor else None
        query = self._chosen(ORDER, limit=limit + 1 if limit else None, after=position)
        page = list(query[: limit + 1]) if limit else list(query)
        next_cursor = ""
        if limit and len(page) > limit:
            page = page[:limit]
            next_cursor = encode_cursor(page[-1])
        return [self.describe(row) for row in page], next_cursor

    def oldest(self, limit: int = 10) -> list[dict]:
        """The items longest in their stage (for the weekly email)."""
        query = self._chosen(("entered_at", "object_id"), limit=limit)
        return [self.describe(row) for row in query[:limit]]

    def iter_rows(self, chunk: int = 2000):
        """Every matching row, most urgent first, for the streamed CSV: one query, read
        `chunk` rows at a time (a server-side cursor on PostgreSQL), so a firm's whole list
        costs one run, not one per page."""
        for row in self._chosen(ORDER).iterator(chunk):
            yield self.describe(row)

    def describe(self, row: dict) -> dict:
        entered = row["entered_at"]
        row["days_in_stage"] = (self.now - entered).days if entered else None
        row["stage_label"] = STAGES.get(row["item_stage"], row["item_stage"])
        row["reason_label"] = REASONS.get(row["item_reason"], row["item_reason"])
        holder = row["item_holder"]
        row["holder_label"] = Holder(holder).label if holder in Holder.values else ""
        name = f"{row['client_first']} {row['client_last']}".strip()
        row["client_name"] = (
            f"{name}, {row['client_credentials']}" if row["client_credentials"] else name
        )
        row["profile_label"] = row["organization"] or (
            "Individual profile" if row["item_kind"] != "client" else ""
        )
        row["assignee_label"] = row["assignee_name"] or row["assignee_email"] or "Unassigned"
        return row

    def counts(self) -> dict:
        """Headline, stage x age bucket, per staff member and per holder, from one query:
        each part grouped by stage, age bucket, holder and assignee id, the parts UNIONed
        (the steps' own rows need no client: only the quiet clients' part joins theirs);
        then the assignees' names, one row each."""
        rows = []
        for part in self.parts:
            rows.append(
                part.annotate(
                    bucket=_bucket("entered_at", self.now),
                    runs_out=Case(
                        When(
                            item_deadline__gt=self.now,
                            item_deadline__lte=self.now + timedelta(days=7),
                            then=Value(1),
                        ),
                        default=Value(0),
                        output_field=IntegerField(),
                    ),
                )
                .values("stage", "bucket", "runs_out", "holder", "assignee")
                .annotate(n=Count("pk"))
                .order_by()
            )
        rows = list(rows[0].union(*rows[1:], all=True))
        assignees = {
            user.pk: user
            for user in User.objects.filter(pk__in={row["assignee"] for row in rows}).only(
                "public_id", "full_name", "email"
            )
        }
        by_stage: dict[str, dict[str, int]] = {}
        by_staff: dict[str, dict] = {}
        by_holder: dict[str, int] = {}
        total = runs_out_this_week = 0
        for row in rows:
            n = row["n"]
            total += n
            runs_out_this_week += n * row["runs_out"]
            stage = by_stage.setdefault(row["stage"], {label: 0 for label, *_ in AGE_BUCKETS})
            stage[row["bucket"]] += n
            by_holder[row["holder"]] = by_holder.get(row["holder"], 0) + n
            assignee = assignees.get(row["assignee"])
            key = str(assignee.public_id) if assignee else ""
            staff = by_staff.setdefault(
                key,
                {
                    "public_id": key,
                    "name": assignee.display_name if assignee else "Unassigned",
                    "n": 0,
                },
            )
            staff["n"] += n
        return {
            "total": total,
            "runs_out_this_week": runs_out_this_week,
            "by_stage": [
                {
                    "stage": stage,
                    "label": STAGES.get(stage, stage),
                    "buckets": buckets,
                    "n": sum(buckets.values()),
                }
                for stage, buckets in sorted(
                    by_stage.items(),
                    key=lambda item: list(STAGES).index(item[0]) if item[0] in STAGES else 99,
                )
            ],
            "by_staff": sorted(by_staff.values(), key=lambda s: -s["n"]),
            "by_holder": [
                {"holder": holder, "label": Holder(holder).label, "n": n}
                for holder, n in sorted(by_holder.items(), key=lambda item: -item[1])
                if holder in Holder.values
            ],
        }


def stuck_report(
    *, membership: Membership, filters: ReportFilters, now: datetime | None = None
) -> StuckReport:
    """The firm's stuck items as `membership` may see them: admins all, staff their caseload."""
    now = now or timezone.now()
    firm = membership.firm
    rules = StuckRules.for_firm(firm)
    every = listing(firm, rules, now)
    quiet = every[Rule.IDLE_CLIENT]
    steps = {rule: item for rule, item in every.items() if rule != Rule.IDLE_CLIENT}
    parts = [
        _listed(OpenStep.objects.filter(_any_of(steps), firm=firm), steps),
        _listed(
            OpenStep.objects.filter(quiet.when, firm=firm, rule=Rule.IDLE_CLIENT),
            {Rule.IDLE_CLIENT: quiet},
        ),
    ]
    by_rule = {
        rule: _listed(OpenStep.objects.filter(item.when, firm=firm, rule=rule), {rule: item})
        for rule, item in steps.items()
    }
    by_rule[Rule.IDLE_CLIENT] = parts[1]
    scope = None if membership.is_admin else membership.user.public_id

    def filtered(part: QuerySet) -> QuerySet:
        return _filtered(part, filters, scope_staff=scope, now=now)

    return StuckReport(
        firm=firm,
        rules=rules,
        now=now,
        parts=[filtered(part) for part in parts],
        listing=every,
        by_rule={rule: filtered(part) for rule, part in by_rule.items()},
    )
