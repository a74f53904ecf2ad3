"""The stuck report for firm admins (staff see theirs): page, CSV export."""

import csv
from datetime import datetime

from django.core.cache import cache
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from portal import audit
from portal.access import firm_member_required
from portal.models import Membership
from workflows.models import Holder

from .durations import expected_completion, stage_durations, weekly_trend
from .export import csv_cell
from .forms import StuckFilterForm
from .reports import ReportFilters, stuck_report
from .stuck import AGE_BUCKETS, REASONS, STAGES

CSV_COLUMNS = [
    ("client", "client_name"),
    ("profile", "profile_label"),
    ("stage", "stage_label"),
    ("reason", "reason_label"),
    ("holder", "holder_label"),
    ("days_in_stage", "days_in_stage"),
    ("entered_stage", "entered_at"),
    ("deadline", "item_deadline"),
    ("assignee", "assignee_label"),
    ("last_activity", "last_activity"),
]


def _filters(request, *, announce: bool = True) -> ReportFilters:
    form = StuckFilterForm(request, announce=announce)
    return form.report_filters(is_admin=request.membership.is_admin)


# Medians over 90 days and weekly counts move slowly: computed at most every ten minutes.
HISTORY_CACHE_SECONDS = 600


def cached(firm, name: str, compute):
    return cache.get_or_set(f"report:{name}:{firm.pk}", compute, HISTORY_CACHE_SECONDS)


def trend_chart(points: list[tuple[datetime, int]], zone) -> dict:
    """Bars for an SVG drawn by the template: positions computed here, no script needed."""
    width, height, left, bottom, top = 640, 220, 40, 30, 20
    peak = max([count for _, count in points] + [1])
    slot = (width - left - 10) / len(points)
    bars = []
    for index, (end, count) in enumerate(points):
        bar_height = (height - bottom - top) * count / peak
        bars.append(
            {
                "x": round(left + index * slot + slot * 0.15, 1),
                "y": round(height - bottom - bar_height, 1),
                "width": round(slot * 0.7, 1),
                "height": round(bar_height, 1),
                "count": count,
                "label": end.astimezone(zone).strftime("%b %-d"),
                "label_x": round(left + index * slot + slot / 2, 1),
            }
        )
    return {"width": width, "height": height, "bars": bars, "peak": peak, "base": height - bottom}


@firm_member_required
def stuck_report_page(request):
    membership = request.membership
    filters = _filters(request)
    report = stuck_report(membership=membership, filters=filters)
    rows, next_cursor = report.rows(cursor=request.GET.get("after", ""))
    medians = cached(request.firm, "durations", lambda: stage_durations(request.firm, report.now))
    for row in rows:
        if row["item_kind"] == "enrollment" or row["item_stage"] == "signature":
            row["expected"] = expected_completion(row["item_stage"], row["entered_at"], medians)
    query = request.GET.copy()
    query.pop("after", None)
    staff = []
    if membership.is_admin:
        staff = list(
            Membership.objects.firm_staff(request.firm)
            .select_related("user")
            .order_by("user__full_name", "user__email")
        )
    trend = (
        cached(request.firm, "trend", lambda: weekly_trend(request.firm, report.rules, report.now))
        if membership.is_admin
        else []
    )
    return render(
        request,
        "reports/stuck_report.html",
        {
            "rows": rows,
            "counts": report.counts(),
            "filters": filters,
            "stages": STAGES,
            "reasons": REASONS,
            "holders": Holder.choices,
            "buckets": [b[0] for b in AGE_BUCKETS],
            "staff": staff,
            "durations": [(STAGES[stage], medians[stage]) for stage in STAGES if stage in medians],
            "trend": trend,
            "chart": trend_chart(trend, request.firm.zone) if trend else None,
            "rules": report.rules.labelled(),
            "next_cursor": next_cursor,
            "query": query.urlencode(),
            "is_first_page": not request.GET.get("after"),
            "now": report.now,
        },
    )


class _Echo:
    def write(self, value):
        return value


@firm_member_required
def stuck_report_csv(request):
    """Exactly what the filtered page shows, every page of it, streamed row by row."""
    filters = _filters(request, announce=False)
    report = stuck_report(membership=request.membership, filters=filters)
    audit.record(
        "report.stuck_exported",
        actor=request.user,
        firm=request.firm,
        data={name: value for name, value in vars(filters).items() if value},
    )
    writer = csv.writer(_Echo())
    zone = request.firm.zone

    def lines():
        yield writer.writerow([name for name, _ in CSV_COLUMNS])
        for row in report.iter_rows():
            yield writer.writerow([csv_cell(row[key], zone) for _, key in CSV_COLUMNS])

    stamp = timezone.now().astimezone(request.firm.zone).strftime("%Y-%m-%d")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="stuck-{request.firm.slug}-{stamp}.csv"'
    )
    return response
