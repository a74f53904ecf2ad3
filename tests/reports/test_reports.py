"""The stuck report: each rule and threshold, age buckets, scope, durations, trend, the CSV,
the weekly email, and query budgets that do not grow with the data."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from clients.models import Client
from notifications.models import Notification
from portal.models import Membership
from reports.durations import expected_completion, stage_durations, weekly_trend
from reports.reports import ReportFilters, stuck_report
from reports.stuck import StuckRules
from tests.clients.factories import make_client
from workflows import services
from workflows.models import Enrollment
from workflows.open_steps import refresh_read_models
from workflows.rules import Party

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday


def at(days_ago: float):
    return time_machine.travel(NOW - timedelta(days=days_ago), tick=False)


def report_for(user, now=NOW, **filters):
    membership = Membership.objects.select_related("firm", "user").get(user=user)
    return stuck_report(membership=membership, filters=ReportFilters(**filters), now=now)


def stuck_rows(user, **filters):
    rows, _ = report_for(user, **filters).rows(limit=500)
    return [(row["client_last"], row["item_stage"], row["item_reason"]) for row in rows]


def request_sent(firm, staff, days_ago, *, last="Client", method="connection_request", first="Pat"):
    with at(days_ago):
        client = make_client(firm, actor=staff, last_name=last, first_name=first)
        grant = services.grant_create(
            profile=client.profiles.get(),
            method=method,
            requested_role="access_manager",
            actor=staff,
        )
    return client, grant


@pytest.mark.parametrize(("days", "stuck"), [(13, False), (14, True)])
def test_access_pending_threshold(northwind, northwind_admin, days, stuck):
    request_sent(northwind, northwind_admin, days, last="Waiting", method="add_staff")
    assert (("Waiting", "access_pending", "waiting_long") in stuck_rows(northwind_admin)) is stuck


@pytest.mark.parametrize(("days", "stuck"), [(24, False), (25, True)])
def test_request_near_its_deadline(northwind, northwind_admin, days, stuck):
    northwind.stuck_thresholds = {"access_pending": 40}  # isolate the deadline rule
    northwind.time_zone = "Pacific/Honolulu"  # no daylight saving: 30 days are 30 x 24 hours
    northwind.save()
    request_sent(northwind, northwind_admin, days, last="Near")
    assert (("Near", "access_pending", "near_deadline") in stuck_rows(northwind_admin)) is stuck


def test_expired_and_not_sent_again(northwind, northwind_admin):
    client, grant = request_sent(northwind, northwind_admin, 35, last="Expired")
    with at(4):
        services.grants_expire_due()
    assert ("Expired", "access_expired", "expired_not_resent") in stuck_rows(northwind_admin)
    with at(1):
        services.grant_send_again(grant=grant, actor=northwind_admin)
    assert all(
        row[0] != "Expired" or row[1] != "access_expired" for row in stuck_rows(northwind_admin)
    )


@pytest.mark.parametrize(("days", "stuck"), [(1, False), (2, True)])
def test_unverified_claim(northwind, northwind_admin, days, stuck):
    _, grant = request_sent(northwind, northwind_admin, 5, last="Claimed")
    with at(days):
        services.grant_claim_done(
            grant=grant, party=Party(name="P", is_provider=True), actor=northwind_admin
        )
    assert (("Claimed", "verify", "unverified") in stuck_rows(northwind_admin)) is stuck


def open_round(firm, staff, days_ago, *, last, method="electronic"):
    with at(days_ago + 1):
        client = make_client(firm, actor=staff, last_name=last)
        enrollment = services.enrollment_create(
            profile=client.profiles.get(), kind="initial", actor=staff
        )
    with at(days_ago):
        return services.round_open(enrollment=enrollment, actor=staff, method=method)


@pytest.mark.parametrize(
    ("days", "reason"), [(9, None), (10, "waiting_long"), (20, "past_deadline")]
)
def test_signature_rules(northwind, northwind_admin, days, reason):
    open_round(northwind, northwind_admin, days, last="Signer")
    found = [
        row for row in stuck_rows(northwind_admin) if row[0] == "Signer" and row[1] == "signature"
    ]
    assert [row[2] for row in found] == ([reason] if reason else [])


@pytest.mark.parametrize(("days", "past"), [(19.9, False), (20, True)])
@pytest.mark.parametrize("method", ["electronic", "upload", "paper"])
def test_every_signature_method_is_past_its_deadline_after_20_days(
    northwind, northwind_admin, rivera, method, days, past
):
    """CMS's 20 days run for the electronic signature and the wet-signed statement alike,
    uploaded or in the mail to the contractor (issue 10, section 1)."""
    signature_round = open_round(northwind, northwind_admin, days, last="Signer", method=method)
    if method == "paper":  # the provider says it is in the mail: the MAC must still have it
        with at(days - 1):
            services.round_claim_signed(
                signature_round=signature_round,
                party=Party(name="Pat", is_provider=True),
                actor=northwind_admin,
            )
    stage = "paper" if method == "paper" else "signature"
    rows = stuck_rows(northwind_admin)
    assert (("Signer", stage, "past_deadline") in rows) is past
    assert (("Signer", stage, "waiting_long") in rows) is not past


@pytest.mark.parametrize(
    ("state", "threshold"), [("preparing", 21), ("submitted", 45), ("in_development", 20)]
)
def test_enrollment_stage_thresholds(northwind, northwind_admin, state, threshold):
    """Entered the state exactly `threshold` days ago: stuck now, not a second earlier."""
    with at(threshold + 2):
        client = make_client(northwind, actor=northwind_admin, last_name="Slow")
        enrollment = services.enrollment_create(
            profile=client.profiles.get(), kind="initial", actor=northwind_admin
        )
    moves = {"preparing": [], "submitted": ["submitted"], "in_development": []}[state]
    if state in ("preparing", "in_development"):  # in development with no request recorded
        Enrollment.objects.filter(pk=enrollment.pk).update(
            state=state, state_entered_at=NOW - timedelta(days=threshold)
        )
        # A write around the services: the client's read models follow it by hand.
        refresh_read_models(Client.objects.filter(pk=client.pk))
    for index, to in enumerate(moves):
        with at(threshold + len(moves) - 1 - index):
            services.enrollment_change_state(enrollment=enrollment, to=to, actor=northwind_admin)
    assert ("Slow", state, "slow_stage") in stuck_rows(northwind_admin)
    earlier, _ = report_for(northwind_admin, now=NOW - timedelta(seconds=1)).rows(limit=100)
    assert not [r for r in earlier if r["client_last"] == "Slow" and r["item_stage"] == state]


def test_a_quiet_client_counts_once(northwind, northwind_admin):
    with at(40):
        quiet = make_client(northwind, actor=northwind_admin, last_name="Quiet")
        services.enrollment_create(
            profile=quiet.profiles.get(), kind="initial", actor=northwind_admin
        )
    northwind.stuck_thresholds = {"preparing": 100}
    northwind.save()
    assert ("Quiet", "idle_client", "no_activity") in stuck_rows(northwind_admin)
    northwind.stuck_thresholds = {}
    northwind.save()
    # Now the enrollment itself is stuck (preparing > 21 days): the client is not listed twice.
    assert [row for row in stuck_rows(northwind_admin) if row[0] == "Quiet"] == [
        ("Quiet", "preparing", "slow_stage")
    ]


def test_firm_thresholds_override_the_defaults(northwind, northwind_admin):
    request_sent(northwind, northwind_admin, 8, last="Eight", method="add_staff")
    assert not stuck_rows(northwind_admin)
    northwind.stuck_thresholds = {"access_pending": 7}
    northwind.save()
    assert StuckRules.for_firm(northwind).access_pending == 7
    assert stuck_rows(northwind_admin) == [("Eight", "access_pending", "waiting_long")]


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (7, "0-7"),
        (8, "8-14"),
        (14, "8-14"),
        (15, "15-30"),
        (30, "15-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "60+"),
    ],
)
def test_age_bucket_boundaries(northwind, northwind_admin, days, bucket):
    northwind.stuck_thresholds = {"preparing": 0}
    northwind.save()
    with at(days):
        client = make_client(northwind, actor=northwind_admin, last_name="Aged")
        services.enrollment_create(
            profile=client.profiles.get(), kind="initial", actor=northwind_admin
        )
    counts = report_for(northwind_admin).counts()
    preparing = next(s for s in counts["by_stage"] if s["stage"] == "preparing")
    assert preparing["buckets"][bucket] == 1
    assert sum(preparing["buckets"].values()) == 1
    assert [r[0] for r in stuck_rows(northwind_admin, age=bucket)] == ["Aged"]


def test_staff_see_their_caseload_and_filters_narrow(northwind, northwind_admin, northwind_staff):
    request_sent(northwind, northwind_staff, 20, last="Mine", method="add_staff")
    request_sent(northwind, northwind_admin, 20, last="Theirs", method="add_staff")
    assert [r[0] for r in stuck_rows(northwind_staff)] == ["Mine"]
    assert sorted(r[0] for r in stuck_rows(northwind_admin)) == ["Mine", "Theirs"]
    assert [r[0] for r in stuck_rows(northwind_admin, staff=str(northwind_staff.public_id))] == [
        "Mine"
    ]
    assert stuck_rows(northwind_admin, holder="firm") == []
    assert len(stuck_rows(northwind_admin, holder="provider")) == 2
    assert stuck_rows(northwind_admin, reason="near_deadline") == []


def test_the_page_is_scoped_and_never_shows_another_firm(
    as_user, northwind, bluebird, northwind_admin, bluebird_admin
):
    with time_machine.travel(NOW, tick=False):
        request_sent(northwind, northwind_admin, 20, last="Northwindonly", method="add_staff")
        page = as_user(bluebird_admin).get(reverse("stuck_report")).content.decode()
    assert "Northwindonly" not in page


def test_report_agrees_with_the_timeline_to_the_day(northwind, northwind_admin):
    """Generated histories: the report's days in stage equal the days since the timeline
    event that moved each object into its current state."""
    import random

    from portal.models import AuditEvent

    rng = random.Random(7)
    for index in range(12):
        _, grant = request_sent(
            northwind, northwind_admin, rng.randint(15, 29), last=f"Hist{index}", method="add_staff"
        )
        if index % 3 == 0:
            with at(rng.randint(3, 12)):
                services.grant_claim_done(
                    grant=grant, party=Party(name="P", is_provider=True), actor=northwind_admin
                )
    rows, _ = report_for(northwind_admin).rows(limit=100)
    assert len(rows) >= 8
    for row in rows:
        event = (
            AuditEvent.objects.filter(target_id=str(row["object_public_id"]), data__has_key="to")
            .order_by("-created_at", "-id")
            .first()
        )
        assert row["days_in_stage"] == (NOW - event.created_at).days


def test_stage_medians_and_percentiles_on_a_known_history(northwind, northwind_admin):
    # Five requests approved after 1, 2, 3, 4 and 10 days.
    for index, days in enumerate([1, 2, 3, 4, 10]):
        _, grant = request_sent(northwind, northwind_admin, 30, last=f"K{index}")
        with at(30 - days):
            services.grant_mark_active(grant=grant, actor=northwind_admin)
    durations = stage_durations(northwind, NOW)
    pending = durations["access_pending"]
    assert pending.samples == 5
    assert pending.median_days == 3.0
    assert pending.p90_days == 7.6  # between 4 and 10: 4 + 0.6 x 6
    assert expected_completion("preparing", NOW, durations) is None  # no history for it yet


def test_durations_count_from_the_day_it_happened_at_cms(northwind, northwind_admin):
    """Issue 10, section 5: a request recorded today as sent 9 days ago and approved today
    waited 9 days, not none; an application recorded as submitted 4 days ago whose
    signature is confirmed today took 4 days to sign."""
    with at(0):
        client = make_client(northwind, actor=northwind_admin, last_name="Late")
        profile = client.profiles.get()
        sent_on = (NOW - timedelta(days=9)).astimezone(northwind.zone).date()
        grant = services.grant_create(
            profile=profile, method="connection_request", actor=northwind_admin, sent_on=sent_on
        )
        services.grant_mark_active(grant=grant, actor=northwind_admin)
        enrollment = services.enrollment_create(
            profile=profile, kind="initial", actor=northwind_admin
        )
        signature_round = services.round_open(
            enrollment=enrollment,
            actor=northwind_admin,
            submitted_on=(NOW - timedelta(days=4)).astimezone(northwind.zone).date(),
        )
        services.round_confirm(signature_round=signature_round, actor=northwind_admin)
    durations = stage_durations(northwind, NOW + timedelta(minutes=1))
    assert durations["access_pending"].median_days == 9.0
    assert durations["signature"].median_days == 4.0


def test_expected_completion_from_the_medians():
    from reports.durations import StageDuration

    medians = {
        stage: StageDuration(stage=stage, median_days=days, p90_days=days, samples=3)
        for stage, days in [("preparing", 5.0), ("signature", 3.0), ("submitted", 20.0)]
    }
    assert expected_completion("signature", NOW, medians) == NOW + timedelta(days=23)
    assert expected_completion("submitted", NOW, medians) == NOW + timedelta(days=20)
    assert expected_completion("approved", NOW, medians) is None


def test_weekly_trend_on_a_known_history(northwind, northwind_admin):
    # A request sent 40 days ago and approved 10 days ago was "waiting too long" from day 14
    # after it was sent (26 days ago) until it was approved.
    _, grant = request_sent(northwind, northwind_admin, 40, last="Trend", method="add_staff")
    with at(10):
        services.grant_mark_active(grant=grant, actor=northwind_admin)
    trend = weekly_trend(northwind, StuckRules.for_firm(northwind), NOW, weeks=5)
    # Week ends: 28, 21, 14, 7 and 0 days ago.
    assert [count for _, count in trend] == [0, 1, 1, 0, 0]


# --- the page and the CSV ------------------------------------------------------------


def test_csv_is_exactly_the_filtered_report_with_iso_dates_and_no_formulas(
    as_user, northwind, northwind_admin
):
    request_sent(northwind, northwind_admin, 20, first="=HYPERLINK(1)", method="add_staff")
    request_sent(northwind, northwind_admin, 20, last="Plain", method="add_staff")
    with time_machine.travel(NOW, tick=False):
        response = as_user(northwind_admin).get(reverse("stuck_report_csv"), {"holder": "provider"})
        body = b"".join(response.streaming_content).decode()
        rows, _ = report_for(northwind_admin, holder="provider").rows(limit=100)
    assert response["Content-Type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(body)))
    assert [r["client"] for r in parsed] == [
        ("'" if row["client_name"].startswith("=") else "") + row["client_name"] for row in rows
    ]
    assert any(r["client"].startswith("'=HYPERLINK") for r in parsed)
    assert datetime.fromisoformat(parsed[0]["entered_stage"]).tzinfo is not None


def test_csv_times_are_in_the_firms_zone(as_user, northwind, northwind_admin):
    """A moment is written as the firm's clock shows it (an evening deadline in Chicago is
    that evening in the file, not the next morning in UTC)."""
    _client, grant = request_sent(northwind, northwind_admin, 25)
    with time_machine.travel(NOW, tick=False):
        response = as_user(northwind_admin).get(reverse("stuck_report_csv"))
        body = b"".join(response.streaming_content).decode()
    row = next(csv.DictReader(io.StringIO(body)))
    for column in ("entered_stage", "deadline", "last_activity"):
        moment = datetime.fromisoformat(row[column])
        assert moment.utcoffset() == moment.astimezone(northwind.zone).utcoffset(), column
    assert row["deadline"] == grant.deadline.astimezone(northwind.zone).isoformat()


def test_csv_streams_one_query_in_chunks(northwind, northwind_admin, django_assert_num_queries):
    for index in range(7):
        request_sent(northwind, northwind_admin, 20, last=f"S{index}", method="add_staff")
    report = report_for(northwind_admin)
    with django_assert_num_queries(1):  # one run of the UNION, read three rows at a time
        iterator = report.iter_rows(chunk=3)
        first = next(iterator)
        rows = [first, *iterator]
    assert first["client_last"].startswith("S")
    assert len(rows) == 7
    assert rows == report.rows(limit=0)[0]  # the same rows, in the page's order


def test_weekly_email_to_admins_on_monday(northwind, northwind_admin, northwind_staff):
    from reports.digest import send_weekly_reports

    request_sent(northwind, northwind_staff, 20, last="Weekly", method="add_staff")
    monday_8am = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 08:00 in Chicago
    with time_machine.travel(monday_8am - timedelta(days=1), tick=False):
        assert send_weekly_reports() == 0
    with time_machine.travel(monday_8am, tick=False):
        send_weekly_reports()
        send_weekly_reports()
    email = Notification.objects.get(kind="report.weekly")
    assert email.to_email == northwind_admin.email
    assert "Weekly" in email.body_text
    assert "/work/reports/stuck/" in email.body_text


@pytest.mark.parametrize("size", [5, 60])
def test_report_page_query_budget_does_not_grow(
    as_user, northwind, northwind_admin, django_assert_num_queries, size
):
    for index in range(size):
        request_sent(northwind, northwind_admin, 20, last=f"B{index}", method="add_staff")
    client = as_user(northwind_admin)
    client.get(reverse("stuck_report"))
    # session, user, membership (+firm, second factor, unread count), the page of items
    # (one UNION), staff list, counts (one grouped UNION) and the names of the staff they
    # count; stage durations and the weekly trend come from the cache the first request
    # filled (they are two more queries then)
    with django_assert_num_queries(7):
        assert client.get(reverse("stuck_report")).status_code == 200
    from django.core.cache import cache

    cache.clear()
    with django_assert_num_queries(9):
        assert client.get(reverse("stuck_report")).status_code == 200


@pytest.mark.parametrize("size", [5, 60])
def test_csv_query_budget_at_two_sizes(
    as_user, northwind, northwind_admin, django_assert_num_queries, size
):
    for index in range(size):
        request_sent(northwind, northwind_admin, 20, last=f"C{index}", method="add_staff")
    client = as_user(northwind_admin)
    # session, user, membership (+firm, second factor, unread count), the whole list (one
    # query, read 2,000 rows at a time), the audited export
    with django_assert_num_queries(5):
        response = client.get(reverse("stuck_report_csv"))
        lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert len(lines) == size + 1


def test_what_is_about_to_be_lost_comes_first_then_the_slow_by_how_far_past(
    northwind, northwind_admin
):
    """Issue 13: a request expiring in 3 days outranks an enrollment slow for months; slow
    items follow, the furthest past its threshold first; the headline counts this week's."""
    request_sent(northwind, northwind_admin, 27, last="Expiring")  # 3 days left
    for last, days in (("SlowA", 60), ("SlowB", 90)):
        with at(days):
            client = make_client(northwind, actor=northwind_admin, last_name=last)
            services.enrollment_create(
                profile=client.profiles.get(), kind="initial", actor=northwind_admin
            )
    report = report_for(northwind_admin)
    rows, _ = report.rows(limit=50)
    assert [row["client_last"] for row in rows] == ["Expiring", "SlowB", "SlowA"]
    assert report.counts()["runs_out_this_week"] == 1


def mixed_firm(firm, staff, clients: int) -> None:
    """`clients` clients with something on every kind of list: a request waiting, a round
    past its deadline, a slow application, and a quiet client."""
    for index in range(clients):
        request_sent(firm, staff, 20, last=f"Wait{index}", method="add_staff")
        open_round(firm, staff, 21, last=f"Sign{index}")
        with at(60 + index):
            quiet = make_client(firm, actor=staff, last_name=f"Quiet{index}")
            services.enrollment_create(profile=quiet.profiles.get(), kind="initial", actor=staff)
    firm.stuck_thresholds = {"preparing": 400}  # the quiet clients' applications are not slow
    firm.save()


@pytest.mark.parametrize("clients", [2, 20])
def test_the_reports_queries_do_not_grow_with_the_firm(
    northwind, northwind_admin, django_assert_num_queries, clients
):
    """Issue 15: read from the open steps, the page and the counts cost the same queries for
    6 items as for 60, every kind of list included."""
    mixed_firm(northwind, northwind_admin, clients)
    report = report_for(northwind_admin)
    # the page (each list ranked in the table, the chosen rows joined to their clients),
    # the counts (one UNION) and the names of the staff they count
    with django_assert_num_queries(3):
        rows, _ = report.rows()
        counts = report.counts()
    assert counts["total"] == 3 * clients
    assert {row["item_stage"] for row in rows} == {"access_pending", "signature", "idle_client"}


def test_pages_read_in_a_row_are_the_whole_list_in_order(northwind, northwind_admin):
    """Each list brings its first rows only; paging through them still gives every item
    once, in the order of the whole list."""
    mixed_firm(northwind, northwind_admin, 8)  # more on each list than a page holds
    report = report_for(northwind_admin)
    everything, _ = report.rows(limit=0)
    paged, cursor = report.rows(limit=3)
    while cursor:
        more, cursor = report.rows(limit=3, cursor=cursor)
        paged += more
    key = [(row["item_stage"], row["row_pk"]) for row in everything]
    assert [(row["item_stage"], row["row_pk"]) for row in paged] == key
    assert len(key) == 24
    assert [row["client_last"] for row in report.oldest(3)] == ["Quiet7", "Quiet6", "Quiet5"]
