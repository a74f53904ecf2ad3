"""The stuck report, computed by the database.

Each stuck rule is one query part over the rows it is about (open grants, rounds,
enrollments, clients), filtered by the rule and by the report's filters, shaped to the same
columns; the parts are UNIONed, ordered by urgency and cut with a keyset cursor. Counts (by
stage and age bucket, by staff member, by holder) are one grouped UNION. Nothing loops over
all rows in Python: Python only formats the page it shows.
"""

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

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
from django.db.models.functions import Coalesce
from django.utils import timezone

from clients.models import Client, Profile
from portal.models import Firm, Membership
from workflows.models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    Holder,
    SignatureRound,
)

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


def _shape(
    queryset: QuerySet,
    *,
    client: str,
    kind: str,
    stage,
    reason,
    holder,
    deadline,
    urgency,
    entered: str,
):
    """Give every part the same columns, in the same order."""
    prefix = f"{client}__" if client else ""
    return (
        queryset.order_by()
        .annotate(
            item_kind=_text(kind),
            item_stage=stage if not isinstance(stage, str) else _text(stage),
            item_reason=reason if not isinstance(reason, str) else _text(reason),
            item_holder=holder if not isinstance(holder, str) else _text(holder),
            row_pk=F("pk"),
            object_public_id=F("public_id"),
            client_public_id=F(f"{prefix}public_id"),
            client_first=F(f"{prefix}first_name"),
            client_last=F(f"{prefix}last_name"),
            client_credentials=F(f"{prefix}credentials"),
            organization=(
                F(f"{client.removesuffix('client')}organization__legal_name")
                if client
                else Value(None, output_field=CharField())
            ),
            entered_at=F(entered),
            item_deadline=deadline,
            assignee_public_id=F(f"{prefix}assigned_staff__public_id"),
            assignee_name=F(f"{prefix}assigned_staff__full_name"),
            assignee_email=F(f"{prefix}assigned_staff__email"),
            last_activity=F(f"{prefix}last_activity_at"),
            urgency_at=urgency,
        )
        .values(*COLUMNS)
    )


def _days(moment: datetime, days: int) -> datetime:
    return moment - timedelta(days=days)


# "Most urgent first" means what is about to be lost first: items with a clock (a request
# that expires, a signature window) sort by their deadline; items that are merely slow sort
# after every clock, by how long they have been past their threshold. A slow item's sort key
# is the moment it became stuck pushed this far ahead (past any real deadline), so one
# ordered column and the keyset cursor keep working.
SLOW_AFTER_CLOCKS = timedelta(days=366 * 1000)


def _plus(field: str, days: int) -> ExpressionWrapper:
    """The sort key of a slow item: when it passed its threshold, after every clock."""
    return ExpressionWrapper(
        F(field) + timedelta(days=days) + SLOW_AFTER_CLOCKS, output_field=DateTimeField()
    )


NO_DEADLINE = Value(None, output_field=DateTimeField())


def stuck_parts(firm: Firm, rules: StuckRules, now: datetime) -> dict[str, QuerySet]:
    """One queryset per stuck rule, each already shaped to COLUMNS."""
    # The firm is repeated on every joined table: the rows are the same, but the planner can
    # read each table through its firm index, so the cost follows this firm's data.
    parts = _step_parts(
        firm,
        rules,
        now,
        grants=AccessGrant.objects.filter(
            firm=firm, profile__firm=firm, profile__client__firm=firm
        ),
        rounds=SignatureRound.objects.filter(
            firm=firm,
            enrollment__firm=firm,
            enrollment__profile__firm=firm,
            enrollment__profile__client__firm=firm,
        ),
        enrollments=Enrollment.objects.filter(
            firm=firm, profile__firm=firm, profile__client__firm=firm
        ),
        developments=DevelopmentRequest.objects.filter(
            firm=firm,
            enrollment__firm=firm,
            enrollment__profile__firm=firm,
            enrollment__profile__client__firm=firm,
        ),
        credentials=Credential.objects.filter(
            firm=firm, profile__firm=firm, profile__client__firm=firm
        ),
    )
    # A quiet client counts once: only when none of its steps is already on the list. These
    # probes look at one client each, so they need no firm-wide index.
    probes = _step_parts(
        firm,
        rules,
        now,
        grants=AccessGrant.objects.filter(firm=firm),
        rounds=SignatureRound.objects.filter(firm=firm),
        enrollments=Enrollment.objects.filter(firm=firm),
        developments=DevelopmentRequest.objects.filter(firm=firm),
        credentials=Credential.objects.filter(firm=firm),
    )
    idle = Client.objects.filter(
        firm=firm, last_activity_at__lte=_days(now, rules.idle_client)
    ).filter(
        Exists(
            Profile.objects.filter(client=OuterRef("pk")).filter(
                Q(access_grants__state__in=AccessGrant.OPEN_STATES)
                | Q(enrollments__state__in=Enrollment.OPEN_STATES)
            )
        )
    )
    for probe in probes.values():
        idle = idle.exclude(Exists(probe.filter(client_public_id=OuterRef("public_id"))))
    parts["idle_client"] = _shape(
        idle,
        client="",
        kind="client",
        stage="idle_client",
        reason="no_activity",
        holder=Holder.FIRM,
        deadline=NO_DEADLINE,
        urgency=_plus("last_activity_at", rules.idle_client),
        entered="last_activity_at",
    )
    return parts


def _step_parts(
    firm, rules, now, *, grants, rounds, enrollments, developments, credentials
) -> dict[str, QuerySet]:
    """The rules about workflow steps (everything but the idle client), one part each."""
    near = now + timedelta(days=rules.request_near_deadline)
    revalidation_near = now + timedelta(days=rules.revalidation_due)
    # A credential expiring within the threshold, or expired, whatever else is going on
    # with it (a renewal asked for, sent, refused): listed once, as expiring or expired.
    today = now.astimezone(firm.zone).date()
    expiring = Q(
        state__in=Credential.LIVE_STATES,
        expires_on__isnull=False,
        expires_on__lte=today + timedelta(days=rules.credential_expiring),
    )
    grant_client, round_client = "profile__client", "enrollment__profile__client"
    open_development = DevelopmentRequest.objects.filter(
        firm=firm, enrollment=OuterRef("pk"), state__in=DevelopmentRequest.OPEN_STATES
    )
    parts = {
        "access_pending": _shape(
            grants.filter(state=AccessGrant.State.AWAITING_PROVIDER).filter(
                Q(deadline__lte=near) | Q(state_entered_at__lte=_days(now, rules.access_pending))
            ),
            client=grant_client,
            kind="grant",
            stage="access_pending",
            reason=Case(
                When(deadline__lte=near, then=Value("near_deadline")),
                default=Value("waiting_long"),
                output_field=CharField(),
            ),
            holder=Holder.PROVIDER,
            deadline=F("deadline"),
            urgency=Coalesce(F("deadline"), _plus("state_entered_at", rules.access_pending)),
            entered="state_entered_at",
        ),
        "access_expired": _shape(
            grants.filter(state__in=AccessGrant.RETRYABLE_STATES).exclude(
                Exists(AccessGrant.objects.filter(firm=firm, previous=OuterRef("pk")))
            ),
            client=grant_client,
            kind="grant",
            stage="access_expired",
            reason="expired_not_resent",
            holder=Holder.FIRM,
            deadline=F("deadline"),
            urgency=_plus("state_entered_at", 0),  # already lost: slow, not a running clock
            entered="state_entered_at",
        ),
        "verify": _shape(
            grants.filter(
                state=AccessGrant.State.PROVIDER_SAYS_DONE,
                state_entered_at__lte=_days(now, rules.verify),
            ),
            client=grant_client,
            kind="grant",
            stage="verify",
            reason="unverified",
            holder=Holder.FIRM,
            deadline=F("deadline"),
            urgency=_plus("state_entered_at", rules.verify),
            entered="state_entered_at",
        ),
        "verify_round": _shape(
            rounds.filter(
                state=SignatureRound.State.PROVIDER_SAYS_SIGNED,
                state_entered_at__lte=_days(now, rules.verify),
            ),
            client=round_client,
            kind="round",
            stage="verify",
            reason="unverified",
            holder=Holder.FIRM,
            deadline=F("deadline"),
            urgency=_plus("state_entered_at", rules.verify),
            entered="state_entered_at",
        ),
        # Every open round not yet with the firm to verify, whatever its method: waiting for
        # the provider, or a statement in the mail to the contractor (CMS counts 20 days for
        # all of them). Past the deadline first; otherwise after the firm's threshold.
        "signature": _shape(
            rounds.filter(
                state__in=[SignatureRound.State.AWAITING_SIGNATURE, SignatureRound.State.MAILED]
            ).filter(Q(deadline__lte=now) | Q(opened_at__lte=_days(now, rules.signature))),
            client=round_client,
            kind="round",
            stage=Case(
                When(state=SignatureRound.State.MAILED, then=Value("paper")),
                default=Value("signature"),
                output_field=CharField(),
            ),
            reason=Case(
                When(deadline__lte=now, then=Value("past_deadline")),
                default=Value("waiting_long"),
                output_field=CharField(),
            ),
            holder=Case(
                When(state=SignatureRound.State.MAILED, then=Value(Holder.CMS.value)),
                default=Value(Holder.PROVIDER.value),
                output_field=CharField(),
            ),
            deadline=F("deadline"),
            urgency=F("deadline"),
            entered="opened_at",
        ),
        # Clocks of their own: a development response due soon (or missed), and a denial
        # whose reconsideration window is open (always listed: it is what is about to be
        # lost).
        "development": _shape(
            developments.filter(
                state__in=DevelopmentRequest.OPEN_STATES,
                deadline__lte=now + timedelta(days=rules.development_due),
            ),
            client=round_client,
            kind="development",
            stage="development",
            reason=Case(
                When(deadline__lte=now, then=Value("past_response_date")),
                default=Value("response_due"),
                output_field=CharField(),
            ),
            holder=Case(
                When(
                    holder=Holder.PROVIDER,
                    state=DevelopmentRequest.State.OPEN,
                    then=Value(Holder.PROVIDER.value),
                ),
                default=Value(Holder.FIRM.value),
                output_field=CharField(),
            ),
            deadline=F("deadline"),
            urgency=F("deadline"),
            entered="state_entered_at",
        ),
        "rejected": _shape(
            enrollments.filter(state=Enrollment.State.REJECTED),
            client="profile__client",
            kind="enrollment",
            stage="rejected",
            reason="rejected_not_resubmitted",
            holder=Holder.FIRM,
            deadline=NO_DEADLINE,
            urgency=_plus("state_entered_at", 0),  # the firm's move, not a running clock
            entered="state_entered_at",
        ),
        "reconsideration": _shape(
            enrollments.filter(reconsideration=Enrollment.Reconsideration.OPEN),
            client="profile__client",
            kind="enrollment",
            stage="reconsideration",
            reason="reconsideration_window",
            holder=Holder.FIRM,
            deadline=F("reconsideration_deadline"),
            urgency=F("reconsideration_deadline"),
            entered="state_entered_at",
        ),
        # A revalidation's due date at CMS: a clock (a missed one stops the provider's
        # billing), listed from the firm's threshold, soonest first.
        "revalidation": _shape(
            enrollments.filter(
                state__in=Enrollment.REVALIDATION_CLOCK_STATES, deadline__lte=revalidation_near
            ),
            client="profile__client",
            kind="enrollment",
            stage="revalidation",
            reason="revalidation_due",
            holder=F("holder"),
            deadline=F("deadline"),
            urgency=F("deadline"),
            entered="state_entered_at",
        ),
        # Credentials: one on file expiring within the threshold (or expired: first, being
        # the oldest clock), a document the provider owes due soon or overdue, and one the
        # provider sent that nobody reviewed.
        "credential": _shape(
            credentials.filter(expiring),
            client="profile__client",
            kind="credential",
            stage="credential",
            reason=Case(
                When(expires_on__lt=today, then=Value("credential_expired")),
                default=Value("credential_expires_soon"),
                output_field=CharField(),
            ),
            holder=Case(
                When(state=Credential.State.RECEIVED, then=Value(Holder.FIRM.value)),
                default=Value(Holder.PROVIDER.value),
                output_field=CharField(),
            ),
            deadline=F("deadline"),
            urgency=F("deadline"),
            entered="state_entered_at",
        ),
        "document": _shape(
            credentials.filter(
                state__in=Credential.OWED_STATES,
                deadline__lte=now + timedelta(days=rules.document_due),
            ).exclude(expiring),
            client="profile__client",
            kind="credential",
            stage="document",
            reason=Case(
                When(deadline__lte=now, then=Value("document_overdue")),
                default=Value("document_due_soon"),
                output_field=CharField(),
            ),
            holder=Holder.PROVIDER,
            deadline=F("deadline"),
            urgency=F("deadline"),
            entered="state_entered_at",
        ),
        "document_review": _shape(
            credentials.filter(
                state=Credential.State.RECEIVED,
                state_entered_at__lte=_days(now, rules.verify),
            ).exclude(expiring),
            client="profile__client",
            kind="credential",
            stage="document_review",
            reason="document_unreviewed",
            holder=Holder.FIRM,
            deadline=F("deadline"),
            urgency=_plus("state_entered_at", rules.verify),
            entered="state_entered_at",
        ),
        **{
            state: _shape(
                enrollments.filter(
                    state=state, state_entered_at__lte=_days(now, getattr(rules, state))
                )
                .exclude(Exists(open_development))
                # a revalidation being prepared near its due date is listed by its clock
                .exclude(state=Enrollment.State.PREPARING, deadline__lte=revalidation_near),
                client="profile__client",
                kind="enrollment",
                stage=state,
                reason="slow_stage",
                holder=F("holder"),
                deadline=NO_DEADLINE,
                urgency=_plus("state_entered_at", getattr(rules, state)),
                entered="state_entered_at",
            )
            for state in (
                Enrollment.State.PREPARING,
                Enrollment.State.SUBMITTED,
                Enrollment.State.IN_DEVELOPMENT,
            )
        },
    }
    return parts


# --- filters, page, counts -------------------------------------------------------------


def _filtered(
    parts: dict[str, QuerySet], filters: ReportFilters, scope_staff, now
) -> list[QuerySet]:
    chosen = []
    for queryset in parts.values():
        if scope_staff is not None:
            queryset = queryset.filter(assignee_public_id=scope_staff)
        if filters.staff:
            queryset = queryset.filter(assignee_public_id=filters.staff)
        if filters.stage:
            queryset = queryset.filter(item_stage=filters.stage)
        if filters.holder:
            queryset = queryset.filter(item_holder=filters.holder)
        if filters.reason:
            queryset = queryset.filter(item_reason=filters.reason)
        bucket = next((b for b in AGE_BUCKETS if b[0] == filters.age), None)
        if bucket:
            _label, low, high = bucket
            queryset = queryset.filter(entered_at__lte=now - timedelta(days=low))
            if high is not None:
                queryset = queryset.filter(entered_at__gt=now - timedelta(days=high + 1))
        chosen.append(queryset)
    return chosen


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
        | Q(urgency_at=urgency, item_kind__gt=kind)
        | Q(urgency_at=urgency, item_kind=kind, row_pk__gt=pk)
    )


@dataclass
class StuckReport:
    firm: Firm
    rules: StuckRules
    now: datetime
    parts: list[QuerySet]

    def rows(self, *, cursor: str = "", limit: int = PAGE_SIZE) -> tuple[list[dict], str]:
        """One page of stuck items, most urgent first, and the next page's cursor ("")."""
        position = decode_cursor(cursor) if cursor else None
        parts = [_after(part, position) for part in self.parts] if position else self.parts
        query = parts[0].union(*parts[1:], all=True).order_by("urgency_at", "item_kind", "row_pk")
        page = list(query[: limit + 1]) if limit else list(query)
        next_cursor = ""
        if limit and len(page) > limit:
            page = page[:limit]
            next_cursor = encode_cursor(page[-1])
        return [self.describe(row) for row in page], next_cursor

    def oldest(self, limit: int = 10) -> list[dict]:
        """The items longest in their stage (for the weekly email)."""
        query = self.parts[0].union(*self.parts[1:], all=True).order_by("entered_at", "row_pk")
        return [self.describe(row) for row in query[:limit]]

    def iter_rows(self, chunk: int = 2000):
        """Every matching row, most urgent first, for the streamed CSV: one query, read
        `chunk` rows at a time (a server-side cursor on PostgreSQL), so a firm's whole list
        costs one run of the UNION, not one per page."""
        query = self.parts[0].union(*self.parts[1:], all=True)
        for row in query.order_by("urgency_at", "item_kind", "row_pk").iterator(chunk):
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
        """Headline, stage x age bucket, per staff member and per holder, from one query."""
        grouped = [
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
            .values(
                "item_stage",
                "bucket",
                "runs_out",
                "item_holder",
                "assignee_public_id",
                "assignee_name",
                "assignee_email",
            )
            .annotate(n=Count("row_pk"))
            for part in self.parts
        ]
        rows = list(grouped[0].union(*grouped[1:], all=True).order_by())
        by_stage: dict[str, dict[str, int]] = {}
        by_staff: dict[str, dict] = {}
        by_holder: dict[str, int] = {}
        total = runs_out_this_week = 0
        for row in rows:
            n = row["n"]
            total += n
            runs_out_this_week += n * row["runs_out"]
            stage = by_stage.setdefault(row["item_stage"], {label: 0 for label, *_ in AGE_BUCKETS})
            stage[row["bucket"]] += n
            key = str(row["assignee_public_id"] or "")
            staff = by_staff.setdefault(
                key,
                {
                    "public_id": key,
                    "name": row["assignee_name"] or row["assignee_email"] or "Unassigned",
                    "n": 0,
                },
            )
            staff["n"] += n
            by_holder[row["item_holder"]] = by_holder.get(row["item_holder"], 0) + n
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
    scope = None if membership.is_admin else membership.user.public_id
    parts = _filtered(stuck_parts(firm, rules, now), filters, scope, now)
    return StuckReport(firm=firm, rules=rules, now=now, parts=parts)
