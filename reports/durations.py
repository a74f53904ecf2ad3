"""How long each stage normally takes, and how many items were stuck week by week, from the
transition events the workflows record (the same events the client timelines show).

Every transition event carries {"from": ..., "to": ...}. For one object, ordered in time,
the time spent in a state is the gap between the event that entered it and the next one.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from portal.models import Firm

from .stuck import StuckRules

# (audit target type, state) -> report stage
STAGE_OF = {
    ("workflows.accessgrant", "awaiting_provider"): "access_pending",
    ("workflows.signatureround", "awaiting_signature"): "signature",
    ("workflows.signatureround", "mailed"): "paper",
    ("workflows.enrollment", "preparing"): "preparing",
    ("workflows.enrollment", "submitted"): "submitted",
    ("workflows.enrollment", "in_development"): "in_development",
}
# A statement in the mail is stuck by the signature threshold: CMS's 20 days run the same.
THRESHOLD_OF = {"paper": "signature"}
TARGET_TYPES = sorted({target for target, _ in STAGE_OF})
# A stage counts toward "how long it usually takes" when it was left forward, not abandoned
# (an expired request's 30 days are not how long approval takes).
FORWARD_EXITS = {
    ("workflows.accessgrant", "awaiting_provider"): ("provider_says_done", "active"),
    ("workflows.signatureround", "awaiting_signature"): ("provider_says_signed", "confirmed"),
    ("workflows.signatureround", "mailed"): ("received",),
    ("workflows.enrollment", "preparing"): ("awaiting_signature", "submitted"),
    ("workflows.enrollment", "submitted"): (
        "in_development",
        "approved",
        "denied",
        "rejected",
        "returned",
    ),
    ("workflows.enrollment", "in_development"): (
        "submitted",
        "approved",
        "denied",
        "rejected",
        "returned",
    ),
}
# The usual road of an enrollment, for the expected completion date.
ENROLLMENT_PATH = ["preparing", "signature", "submitted"]
WINDOW_DAYS = 90


def _sql_bits() -> dict[str, str]:
    if connection.vendor == "postgresql":
        return {
            "from": "data->>'from'",
            "to": "data->>'to'",
            "at": "COALESCE((data->>'cms_at')::timestamptz, created_at)",
            "seconds": "EXTRACT(EPOCH FROM ({end} - {start}))",
        }
    return {
        "from": "json_extract(data, '$.from')",
        "to": "json_extract(data, '$.to')",
        "at": "COALESCE(json_extract(data, '$.cms_at'), created_at)",
        "seconds": "((julianday({end}) - julianday({start})) * 86400.0)",
    }


# Each state change with the moment the object entered the state it leaves. `at` is when it
# happened at CMS when staff recorded that day (`cms_at`: a request sent, an application
# submitted, a letter dated), else when it was recorded: the durations count from it. Only
# constants and placeholders are formatted in (by _moves_cte); every value goes in as a
# parameter.
MOVES_CTE = """
        WITH moves AS (
            SELECT target_type, target_id, created_at,
                   {from_state} AS from_state,
                   {to_state} AS to_state,
                   {at} AS at,
                   LAG({at}) OVER (
                       PARTITION BY target_type, target_id ORDER BY created_at, id
                   ) AS entered_at_cms,
                   LAG(created_at) OVER (
                       PARTITION BY target_type, target_id ORDER BY created_at, id
                   ) AS entered_at,
                   LEAD(created_at) OVER (
                       PARTITION BY target_type, target_id ORDER BY created_at, id
                   ) AS left_at
            FROM portal_auditevent
            WHERE firm_id = %s AND target_type IN ({placeholders})
              AND {to_state} IS NOT NULL
              AND target_id IN (
                  SELECT target_id FROM portal_auditevent WHERE firm_id = %s AND created_at >= %s
              )
        )
    """


def _moves_cte() -> str:
    """Each state change with the moment the object entered the state it leaves, for the
    objects that moved since a given moment (the second and fourth parameters)."""
    bits = _sql_bits()
    placeholders = ", ".join(["%s"] * len(TARGET_TYPES))
    return MOVES_CTE.format(
        from_state=bits["from"], to_state=bits["to"], at=bits["at"], placeholders=placeholders
    )


# A stage measured across a date staff gave and one recorded (a letter dated before the
# signature was recorded) can come out negative: such a sample says nothing and is left out.
DURATIONS_SQL = """
        SELECT target_type, from_state, {seconds} AS secs FROM moves
        WHERE entered_at IS NOT NULL AND created_at >= %s AND ({forward})
          AND {seconds} >= 0
"""
PERCENTILES_SQL = """SELECT target_type, from_state,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY secs),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY secs), count(*)
    FROM ({base}) AS durations GROUP BY target_type, from_state"""


@dataclass(frozen=True)
class StageDuration:
    stage: str
    median_days: float
    p90_days: float
    samples: int


def stage_durations(firm: Firm, now: datetime | None = None) -> dict[str, StageDuration]:
    """Median and 90th percentile days in each stage, over stages left in the last 90 days."""
    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    bits = _sql_bits()
    seconds = bits["seconds"].format(end="at", start="entered_at_cms")
    forward, forward_params = [], []
    for (target, state), exits in FORWARD_EXITS.items():
        placeholders = ", ".join(["%s"] * len(exits))
        forward.append(f"(target_type = %s AND from_state = %s AND to_state IN ({placeholders}))")
        forward_params += [target, state, *exits]
    where = " OR ".join(forward)
    base = _moves_cte() + DURATIONS_SQL.format(seconds=seconds, forward=where)
    params = [firm.pk, *TARGET_TYPES, firm.pk, since, since, *forward_params]
    results: dict[str, StageDuration] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PERCENTILES_SQL.format(base=base), params)  # nosec B608
            rows = cursor.fetchall()
        else:  # SQLite has no percentile aggregate: the same numbers, computed here
            cursor.execute(base, params)
            samples: dict[tuple[str, str], list[float]] = {}
            for target_type, state, secs in cursor.fetchall():
                samples.setdefault((target_type, state), []).append(float(secs))
            rows = [
                (target, state, _percentile(values, 0.5), _percentile(values, 0.9), len(values))
                for (target, state), values in samples.items()
            ]
    for target_type, state, median, p90, count in rows:
        stage = STAGE_OF.get((target_type, state))
        if stage:
            results[stage] = StageDuration(
                stage=stage,
                median_days=round(float(median) / 86400, 1),
                p90_days=round(float(p90) / 86400, 1),
                samples=int(count),
            )
    return results


def _percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (what percentile_cont computes)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected_completion(stage: str, entered_at: datetime, medians: dict[str, StageDuration]):
    """When an open enrollment should be approved if the rest goes at the firm's usual pace:
    the median of its current stage from when it entered it, plus the medians of the stages
    still ahead on the usual road. None when a stage has no history yet."""
    if stage not in ENROLLMENT_PATH:
        return None
    ahead = ENROLLMENT_PATH[ENROLLMENT_PATH.index(stage) :]
    if any(step not in medians for step in ahead):
        return None
    return entered_at + timedelta(days=sum(medians[step].median_days for step in ahead))


def weekly_trend(firm: Firm, rules: StuckRules, now: datetime | None = None, weeks: int = 12):
    """[(week end, stuck count)] for the last `weeks` weeks: steps that were, at the end of
    each week, older in their stage than the firm's threshold for it."""
    now = now or timezone.now()
    ends = [now - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]
    thresholds = {
        (target, state): getattr(rules, THRESHOLD_OF.get(stage, stage))
        for (target, state), stage in STAGE_OF.items()
    }
    cases, params = [], []
    for end in ends:
        whens = []
        for (target, state), days in thresholds.items():
            whens.append(
                "(target_type = %s AND to_state = %s AND created_at <= %s"
                " AND (left_at IS NULL OR left_at > %s))"
            )
            params += [target, state, end - timedelta(days=days), end]
        cases.append(f"SUM(CASE WHEN {' OR '.join(whens)} THEN 1 ELSE 0 END)")
    # bandit: the cases are constants and placeholders; values are parameters
    sql = _moves_cte() + "SELECT " + ", ".join(cases) + " FROM moves"  # nosec B608
    # Objects still open at the first week's end may not have moved since: go back far enough
    # for them (a year), not over the whole history.
    since = ends[0] - timedelta(days=365)
    with connection.cursor() as cursor:
        cursor.execute(sql, [firm.pk, *TARGET_TYPES, firm.pk, since, *params])
        counts = cursor.fetchone()
    return [(end, int(count or 0)) for end, count in zip(ends, counts, strict=True)]
