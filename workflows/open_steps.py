"""The read models the transitions keep: each client's next deadline (`Client.next_deadline`,
the caseload's order and filters) and its open steps (`OpenStep`, the stuck report's rows).

`refresh_read_models` is what a transition calls: it recomputes the client's next deadline,
then rewrites the client's open steps, a fixed number of queries whatever the number of
clients (one UPDATE, one DELETE, one INSERT ... SELECT). `reconcile` compares
a firm's rows with what they should be and repairs the difference (the daily task and the
`rebuild_open_steps` command).
"""

import logging
from collections import Counter
from contextvars import ContextVar
from functools import partial, wraps

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    DateField,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Least
from django.utils import timezone

from clients.models import NO_DEADLINE, Client
from portal.models import Firm

from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    Holder,
    OpenStep,
    SignatureRound,
    revalidation_clock_running,
    superseded,
)

logger = logging.getLogger(__name__)

FIELDS = [
    "firm_id",
    "client_id",
    "profile_id",
    "kind",
    "object_id",
    "object_public_id",
    "rule",
    "stage",
    "holder",
    "since",
    "deadline",
    "expires_on",
    "assignee_id",
]
Kind, Rule = OpenStep.Kind, OpenStep.Rule


# --- the client's next deadline (the caseload) ------------------------------------------


def soonest_open_deadline(
    grants=AccessGrant,
    rounds=SignatureRound,
    developments=DevelopmentRequest,
    enrollments=Enrollment,
    credentials=Credential,
) -> Least:
    """Each client's soonest open clock (an access request's, a signature round's, a
    development response's, a denial's reconsideration window, a revalidation's due date, a
    credential's request or expiry), or NO_DEADLINE: the value Client.next_deadline keeps.
    The models can be a migration's."""

    def soonest(steps: QuerySet, field: str = "deadline") -> Coalesce:
        """The earliest `field` of the client's `steps`, or NO_DEADLINE."""
        first = steps.filter(**{f"{field}__isnull": False}).order_by(field).values(field)[:1]
        return Coalesce(Subquery(first, output_field=DateTimeField()), none)

    client = OuterRef("pk")
    none = Value(NO_DEADLINE, output_field=DateTimeField())
    return Least(
        soonest(grants.objects.filter(profile__client=client, state__in=AccessGrant.OPEN_STATES)),
        soonest(
            rounds.objects.filter(
                enrollment__profile__client=client, state__in=SignatureRound.OPEN_STATES
            )
        ),
        soonest(
            developments.objects.filter(
                enrollment__profile__client=client, state__in=DevelopmentRequest.OPEN_STATES
            )
        ),
        soonest(
            enrollments.objects.filter(
                profile__client=client, reconsideration=Enrollment.Reconsideration.OPEN
            ),
            "reconsideration_deadline",
        ),
        soonest(
            enrollments.objects.filter(
                revalidation_clock_running(enrollments), profile__client=client
            )
        ),
        soonest(
            credentials.objects.filter(profile__client=client, state__in=Credential.LIVE_STATES)
        ),
    )


def refresh_next_deadline(clients: QuerySet, **also) -> int:
    """Recompute the stored next deadline of these clients (one UPDATE), with other fields."""
    return clients.update(next_deadline=soonest_open_deadline(), **also)


# --- the open steps (the stuck report) -----------------------------------------------


# The clients a service has changed so far, while it runs (`one_refresh`); None outside.
_changed: ContextVar[set[int] | None] = ContextVar("read_models_changed", default=None)


def client_changed(client_id: int) -> None:
    """A transition changed this client (`services._record`): its read models now, or once
    at the end of the service that made it (`one_refresh`)."""
    changed = _changed.get()
    if changed is not None:
        changed.add(client_id)
        return
    refresh_read_models(Client.objects.filter(pk=client_id), last_activity_at=timezone.now())


def one_refresh(service):
    """A service that moves several steps (a round's signers, the round, its application)
    refreshes its clients' read models once, when it is done, inside its transaction (put
    it under `@transaction.atomic`); a service it calls waits for the outermost one."""

    @wraps(service)
    def run(*args, **kwargs):
        if _changed.get() is not None:
            return service(*args, **kwargs)
        token = _changed.set(set())
        try:
            result = service(*args, **kwargs)
            changed = _changed.get()
        finally:
            _changed.reset(token)
        if changed:
            refresh_read_models(
                Client.objects.filter(pk__in=changed), last_activity_at=timezone.now()
            )
        return result

    return run


def refresh_read_models(clients: QuerySet, **also) -> None:
    """After any change to these clients' workflows: their next deadline (the caseload) and
    their open steps (the stuck report). The UPDATE comes first: it locks the clients' rows,
    so two transitions on one client rewrite its steps one after the other (a bulk caller
    locks its clients first: `lock_in_order`)."""
    refresh_next_deadline(clients, **also)
    refresh_open_steps(clients)


def lock_in_order(rows: QuerySet) -> None:
    """Lock these rows (clients, applications...) in id order: every bulk write (the expiry
    scan, the reconcile, a released caseload) takes them in this one order, so two of them
    over the same rows wait for each other instead of deadlocking."""
    list(rows.select_for_update().order_by("pk").values_list("pk", flat=True))


def refresh_open_steps(clients: QuerySet) -> None:
    """Rewrite these clients' open steps from their workflows: one DELETE, one INSERT."""
    OpenStep.objects.filter(client__in=clients).delete()
    _insert(open_steps_of(clients))


def reassigned(sender, client: Client, **kwargs) -> None:
    """The client's steps follow it to its new staff member (`clients.signals`)."""
    OpenStep.objects.filter(client=client).update(assignee=client.assigned_staff_id)


def fill_open_steps() -> None:
    """Every client's open steps, from nothing (the scale seeder, a database reused from
    before the table): one DELETE, one INSERT ... SELECT over whole tables."""
    OpenStep.objects.all().delete()
    _insert(open_steps_of(Client.objects.all()))


def _insert(rows: QuerySet) -> None:
    sql, params = rows.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(OpenStep._meta.get_field(name).column) for name in FIELDS)
    # The ORM's own SELECT, wrapped: names from the model, values as parameters.
    insert = f"INSERT INTO {quote(OpenStep._meta.db_table)} ({columns}) {sql}"
    with connection.cursor() as cursor:
        cursor.execute(insert, params)


def _through(condition: Q, path: str) -> Q:
    """`condition` about a model, said from the model that reaches it through `path`."""
    return Q(**{f"{path}__{lookup}": value for lookup, value in condition.children})


def _text(value: str) -> Value:
    return Value(value, output_field=CharField())


def _null(field) -> Cast:
    # Typed: PostgreSQL resolves a UNION's column types pair by pair, and two bare NULLs
    # make a text column that a later date cannot join.
    return Cast(Value(None), field)


def _step(
    queryset: QuerySet,
    *,
    client: str,
    kind: str,
    rule,
    stage=None,
    holder,
    since: str | None = "state_entered_at",
    deadline: str | None = "deadline",
    expires_on: str | None = None,
) -> QuerySet:
    """One source of open steps, shaped to FIELDS (all annotations, so their order holds).
    `client`: the path to the step's client ("" for the client itself)."""
    rule = _text(rule) if isinstance(rule, str) else rule
    columns = {
        "firm_id": F("firm_id"),
        "client_id": F(f"{client}_id") if client else F("pk"),
        "profile_id": F(f"{client.removesuffix('__client')}_id")
        if client
        else _null(BigIntegerField()),
        "kind": _text(kind),
        "object_id": F("pk"),
        "object_public_id": F("public_id"),
        "rule": rule,
        "stage": stage if stage is not None else rule,
        "holder": _text(holder) if isinstance(holder, str) else holder,
        "since": F(since) if since else _null(DateTimeField()),
        "deadline": F(deadline) if deadline else _null(DateTimeField()),
        "expires_on": F(expires_on) if expires_on else _null(DateField()),
        "assignee_id": F(f"{client}__assigned_staff_id") if client else F("assigned_staff_id"),
    }
    return (
        queryset.order_by()
        .annotate(**{f"step_{name}": value for name, value in columns.items()})
        .values(*(f"step_{name}" for name in FIELDS))
    )


def open_steps_of(clients: QuerySet) -> QuerySet:
    """What these clients' open steps are now: one UNION ALL of a query per kind of step.

    Only state decides here; the report compares times when it reads the rows."""
    mine = Q(profile__client__in=clients)
    grants = AccessGrant.objects.filter(mine)
    rounds = SignatureRound.objects.filter(_through(mine, "enrollment"))
    developments = DevelopmentRequest.objects.filter(_through(mine, "enrollment"))
    enrollments = Enrollment.objects.filter(mine)
    credentials = Credential.objects.filter(mine)
    # Each kind of step, and the way from it to its client.
    of_grant = partial(_step, client="profile__client", kind=Kind.GRANT)
    of_round = partial(_step, client="enrollment__profile__client", kind=Kind.ROUND)
    of_request = partial(_step, client="enrollment__profile__client", kind=Kind.DEVELOPMENT)
    of_enrollment = partial(_step, client="profile__client", kind=Kind.ENROLLMENT)
    of_credential = partial(_step, client="profile__client", kind=Kind.CREDENTIAL)
    mailed = Value(SignatureRound.State.MAILED)
    parts = [
        of_grant(
            grants.filter(state=AccessGrant.State.AWAITING_PROVIDER),
            rule=Rule.ACCESS_PENDING,
            holder=Holder.PROVIDER,
        ),
        # Expired or rejected and not sent again (sending again is a transition of the
        # same profile: it rewrites this row away).
        of_grant(
            grants.filter(state__in=AccessGrant.RETRYABLE_STATES).exclude(
                Exists(AccessGrant.objects.filter(previous=OuterRef("pk")))
            ),
            rule=Rule.ACCESS_EXPIRED,
            holder=Holder.FIRM,
        ),
        of_grant(
            grants.filter(state=AccessGrant.State.PROVIDER_SAYS_DONE),
            rule=Rule.VERIFY,
            holder=Holder.FIRM,
        ),
        of_round(
            rounds.filter(state=SignatureRound.State.PROVIDER_SAYS_SIGNED),
            rule=Rule.VERIFY_ROUND,
            stage=_text("verify"),
            holder=Holder.FIRM,
        ),
        # Every open round not yet with the firm to verify: waiting for the provider, or a
        # statement in the mail to the contractor (CMS counts 20 days for all of them).
        of_round(
            rounds.filter(
                state__in=[SignatureRound.State.AWAITING_SIGNATURE, SignatureRound.State.MAILED]
            ),
            rule=Rule.SIGNATURE,
            stage=Case(
                When(state=mailed, then=_text("paper")),
                default=_text("signature"),
                output_field=CharField(),
            ),
            holder=Case(
                When(state=mailed, then=_text(Holder.CMS)),
                default=_text(Holder.PROVIDER),
                output_field=CharField(),
            ),
            since="opened_at",
        ),
        of_request(
            developments.filter(state__in=DevelopmentRequest.OPEN_STATES),
            rule=Rule.DEVELOPMENT,
            holder=Case(
                When(
                    holder=Holder.PROVIDER,
                    state=DevelopmentRequest.State.OPEN,
                    then=_text(Holder.PROVIDER),
                ),
                default=_text(Holder.FIRM),
                output_field=CharField(),
            ),
        ),
        of_enrollment(
            enrollments.filter(state=Enrollment.State.REJECTED).exclude(superseded()),
            rule=Rule.REJECTED,
            holder=Holder.FIRM,
        ),
        of_enrollment(
            enrollments.filter(reconsideration=Enrollment.Reconsideration.OPEN),
            rule=Rule.RECONSIDERATION,
            holder=Holder.FIRM,
            deadline="reconsideration_deadline",
        ),
        of_enrollment(
            enrollments.filter(revalidation_clock_running()),
            rule=Rule.REVALIDATION,
            holder=F("holder"),
        ),
        # A slow stage, unless a development request is open (it has its own clock). The
        # deadline kept is the revalidation's: one prepared near its due date is listed by
        # that clock (compared when the report reads it).
        of_enrollment(
            enrollments.filter(
                state__in=[
                    Enrollment.State.PREPARING,
                    Enrollment.State.SUBMITTED,
                    Enrollment.State.IN_DEVELOPMENT,
                ]
            ).exclude(
                Exists(
                    DevelopmentRequest.objects.filter(
                        enrollment=OuterRef("pk"), state__in=DevelopmentRequest.OPEN_STATES
                    )
                )
            ),
            rule=F("state"),
            stage=F("state"),
            holder=F("holder"),
        ),
        of_credential(
            credentials.filter(state__in=Credential.LIVE_STATES, expires_on__isnull=False),
            rule=Rule.CREDENTIAL,
            holder=Case(
                When(state=Credential.State.RECEIVED, then=_text(Holder.FIRM)),
                default=_text(Holder.PROVIDER),
                output_field=CharField(),
            ),
            expires_on="expires_on",
        ),
        of_credential(
            credentials.filter(state__in=Credential.OWED_STATES, deadline__isnull=False),
            rule=Rule.DOCUMENT,
            holder=Holder.PROVIDER,
            expires_on="expires_on",
        ),
        of_credential(
            credentials.filter(state=Credential.State.RECEIVED),
            rule=Rule.DOCUMENT_REVIEW,
            holder=Holder.FIRM,
            expires_on="expires_on",
        ),
        # The client itself, when it has an open request or application: the quiet-client
        # rule lists it when nothing of it has moved for a while and no other row is stuck.
        _step(
            # (Sets of ids, not EXISTS per client: PostgreSQL estimates those so high that it
            # compiles the statement, 1.5 s, for a batch of 500 clients.)
            Client.objects.filter(pk__in=clients).filter(
                Q(pk__in=grants.filter(state__in=AccessGrant.OPEN_STATES).values("profile__client"))
                | Q(
                    pk__in=enrollments.filter(state__in=Enrollment.OPEN_STATES).values(
                        "profile__client"
                    )
                )
            ),
            client="",
            kind=Kind.CLIENT,
            rule=Rule.IDLE_CLIENT,
            holder=Holder.FIRM,
            since=None,
            deadline=None,
        ),
    ]
    return parts[0].union(*parts[1:], all=True).order_by()


# --- reconciling ------------------------------------------------------------------------

RECONCILE_BATCH = 2000


def differences(clients: QuerySet) -> tuple[list[int], Counter]:
    """How these clients' kept open steps differ from what their workflows say now: the
    ids of the rows kept and not due (stale), and the rows due and not kept (missing)."""
    kept: dict[tuple, list[int]] = {}
    for pk, *row in OpenStep.objects.filter(client__in=clients).values_list("pk", *FIELDS):
        kept.setdefault(tuple(row), []).append(pk)
    due = Counter(tuple(row.values()) for row in open_steps_of(clients))
    stale = [pk for row, pks in kept.items() for pk in pks[due.get(row, 0) :]]
    return stale, due - Counter({row: len(pks) for row, pks in kept.items()})


def reconcile(firm: Firm, *, batch_size: int = RECONCILE_BATCH) -> dict[str, int]:
    """Make the firm's open steps what its workflows say, and count what that took.

    1. Take the firm's clients `batch_size` at a time, each batch in one transaction that
       locks their rows in id order (as a bulk refresh does: `lock_in_order`), so no
       transition rewrites their steps meanwhile.
    2. Compare the rows kept with the rows due (`differences`).
    3. Delete the stale rows and insert the missing ones: a table in order is not rewritten.
    4. The same for the clients' stored next deadline (the caseload's order and filters):
       only the clients whose value is wrong are written.
    Returns {"clients", "stale", "missing", "next_deadline"}; safe to run again at any time.
    """
    ids = list(Client.objects.filter(firm=firm).order_by("pk").values_list("pk", flat=True))
    total = {"clients": len(ids), "stale": 0, "missing": 0, "next_deadline": 0}
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            clients = Client.objects.filter(pk__in=ids[start : start + batch_size])
            lock_in_order(clients)
            stale, missing = differences(clients)
            OpenStep.objects.filter(pk__in=stale).delete()
            OpenStep.objects.bulk_create(
                (OpenStep(**dict(zip(FIELDS, row, strict=True))) for row in missing.elements()),
                batch_size=1000,
            )
            wrong = list(
                clients.annotate(due=soonest_open_deadline())
                .exclude(next_deadline=F("due"))
                .values_list("pk", flat=True)
            )
            if wrong:
                refresh_next_deadline(Client.objects.filter(pk__in=wrong))
            total["stale"] += len(stale)
            total["missing"] += missing.total()
            total["next_deadline"] += len(wrong)
    # Ids and counts only: nothing about the clients themselves goes to the logs.
    if total["stale"] or total["missing"] or total["next_deadline"]:
        logger.warning(
            "open steps of firm %s repaired: %d stale rows removed, %d missing rows added, "
            "%d next deadlines corrected (%d clients)",
            firm.pk,
            total["stale"],
            total["missing"],
            total["next_deadline"],
            total["clients"],
        )
    else:
        logger.info("open steps of firm %s in order (%d clients)", firm.pk, total["clients"])
    return total
