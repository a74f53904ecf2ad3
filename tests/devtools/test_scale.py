"""The scale dataset (`seed_scale --size tiny`): deterministic, within the models' rules,
timelines that end in each object's state, the benchmark's named members and provider, and
the reports running on it.

The dataset is built twice (the second time with --reset) once for the module, committed,
and deleted afterwards.
"""

import hashlib
import io
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count, Max, Q

from clients import services as client_services
from clients.models import Client, Organization, Profile
from devtools import scale
from notifications.models import Notification
from portal.models import AuditEvent, Firm, Membership, Role, User
from portal.npi import is_valid_npi
from reports.durations import stage_durations, weekly_trend
from reports.reports import ReportFilters, stuck_report
from reports.stuck import StuckRules
from tests.audit_verbs import recorded_verbs
from workflows import credentials, revalidation
from workflows import services as workflow_services
from workflows.casefile import client_file
from workflows.models import AccessGrant, Enrollment, SignatureRound
from workflows.services import grants_due_for_expiry
from workflows.todos import party_for, todos_for

BASE = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TINY = scale.SIZES["tiny"]
MODELS = [
    Firm,
    User,
    Membership,
    Client,
    Organization,
    Profile,
    AccessGrant,
    Enrollment,
    SignatureRound,
    AuditEvent,
    Notification,
]

pytestmark = pytest.mark.django_db


def seed(*extra) -> str:
    out = io.StringIO()
    call_command("seed_scale", "--size", "tiny", "--now", BASE.isoformat(), *extra, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    """Counts, and a digest of every row of each table in primary-key order."""
    result = {}
    for model in MODELS:
        digest = hashlib.sha256()
        for row in model._base_manager.order_by("pk").values_list():
            digest.update(repr(row).encode())
        result[model.__name__] = (model._base_manager.count(), digest.hexdigest())
    result["first clients"] = list(
        Client.objects.order_by("npi").values_list(
            "npi", "first_name", "last_name", "email", "firm__slug", "assigned_staff__email"
        )[:20]
    )
    return result


@pytest.fixture(scope="module")
def runs(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        first_output = seed("--reset")
        first = snapshot()
        seed("--reset")
        second = snapshot()
        yield first_output, first, second
        with transaction.atomic():
            scale.reset()


def test_same_seed_same_rows(runs):
    output, first, second = runs
    assert first == second
    assert "Done in" in output
    counts = {model.__name__: first[model.__name__][0] for model in MODELS}
    assert counts["Client"] == TINY.clients
    assert counts["AccessGrant"] == TINY.grants
    assert counts["Enrollment"] == TINY.enrollments
    assert counts["SignatureRound"] == TINY.rounds
    assert counts["Notification"] == TINY.notifications


def test_another_seed_other_rows(runs):
    _, first, _ = runs
    # Built in its own transaction, rolled back with the test.
    seed("--reset", "--seed", "2")
    assert snapshot()["Client"][1] != first["Client"][1]


def test_refuses_a_database_with_clients(runs):
    with pytest.raises(CommandError, match="already has clients"):
        seed()


def test_shape(runs):
    sizes = list(
        Firm.objects.annotate(n=Count("clients")).order_by("-n").values_list("n", flat=True)
    )
    assert sizes == scale.firm_sizes(TINY)
    assert sum(sizes) == TINY.clients
    firm_roles = Membership.objects.filter(role__in=[Role.ADMIN, Role.STAFF])
    assert firm_roles.count() == TINY.staff
    assert set(firm_roles.filter(role=Role.ADMIN).values_list("firm__slug", flat=True)) == set(
        Firm.objects.values_list("slug", flat=True)
    )
    with_organization = Client.objects.filter(organizations__isnull=False).distinct().count()
    assert 0.3 < with_organization / TINY.clients < 0.5
    assert Profile.objects.count() == TINY.clients + Organization.objects.count()
    providers = Membership.objects.filter(role=Role.CLIENT).count()
    assert providers == Client.objects.filter(user__isnull=False).count()
    assert 0.05 < providers / TINY.clients < 0.15
    npis = list(Client.objects.values_list("npi", flat=True))
    assert len(set(npis)) == len(npis)
    assert all(is_valid_npi(npi) for npi in npis)
    assert all(
        is_valid_npi(npi)
        for npi in Organization.objects.exclude(npi="").values_list("npi", flat=True)
    )
    for model in (AccessGrant, Enrollment, SignatureRound):
        states = set(model.objects.values_list("state", flat=True))
        assert states == set(model.State.values), model


def test_model_rules_hold(runs):
    live = ["prepared", "awaiting_provider", "provider_says_done", "active"]
    assert not (
        AccessGrant.objects.filter(state__in=live)
        .values("profile")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    assert not (
        SignatureRound.objects.filter(state__in=SignatureRound.OPEN_STATES)
        .values("enrollment")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    # Rounds are numbered 1..n, and only an enrollment awaiting a signature has an open one.
    for enrollment in Enrollment.objects.annotate(
        n=Count("rounds"),
        top=Max("rounds__number"),
        open=Count("rounds", filter=Q(rounds__state__in=SignatureRound.OPEN_STATES)),
    ):
        assert (enrollment.top or 0) == enrollment.n
        assert enrollment.open == (enrollment.state == Enrollment.State.AWAITING_SIGNATURE)
    # "Send again" links a new attempt to an expired or rejected one of the same profile.
    linked = AccessGrant.objects.filter(previous__isnull=False).select_related("previous")
    assert linked.exists()
    for grant in linked:
        assert grant.previous.state in AccessGrant.RETRYABLE_STATES
        assert grant.previous.profile_id == grant.profile_id
        assert grant.previous.state_entered_at <= grant.created_at
    assert not AccessGrant.objects.filter(
        state="awaiting_provider", method="connection_request", deadline__isnull=True
    ).exists()


def test_pending_requests_fall_due_day_by_day(runs):
    pending = AccessGrant.objects.filter(
        state__in=AccessGrant.PENDING_STATES, method="connection_request"
    )
    deadlines = list(pending.values_list("deadline", flat=True))
    assert all(BASE - timedelta(days=5) < d <= BASE + timedelta(days=31) for d in deadlines)
    assert grants_due_for_expiry(BASE).exists()  # the expiry scan has work
    days = Counter((d - BASE).days for d in deadlines if d > BASE)
    assert len(days) >= 25  # spread over the month, not bunched


def test_timelines_end_in_each_objects_state(runs):
    transitions = defaultdict(list)
    for target_type, target_id, data, created_at in (
        AuditEvent.objects.filter(target_type__startswith="workflows.")
        .order_by("created_at", "id")
        .values_list("target_type", "target_id", "data", "created_at")
    ):
        transitions[(target_type, target_id)].append((data, created_at))
    for model in (AccessGrant, Enrollment, SignatureRound):
        target_type = model._meta.label_lower
        for public_id, state, entered in model.objects.values_list(
            "public_id", "state", "state_entered_at"
        ):
            events = transitions[(target_type, str(public_id))]
            assert events, (target_type, public_id)
            assert "from" not in events[0][0]
            for (before, _), (after, _) in zip(events, events[1:], strict=False):
                assert after["from"] == before["to"], (target_type, public_id)
            last, moment = events[-1]
            assert last["to"] == state, (target_type, public_id)
            assert moment == entered, (target_type, public_id)
    # The client's last activity is its latest event.
    latest = dict(
        AuditEvent.objects.values("client_uuid")
        .annotate(at=Max("created_at"))
        .values_list("client_uuid", "at")
    )
    for public_id, last_activity in Client.objects.values_list("public_id", "last_activity_at"):
        assert latest[public_id] == last_activity


def test_benchmark_members_and_provider(runs):
    firm = Firm.objects.get(slug="scale-001")
    loads = dict(
        Client.objects.filter(firm=firm, assigned_staff__isnull=False)
        .values("assigned_staff__email")
        .annotate(n=Count("id"))
        .values_list("assigned_staff__email", "n")
    )
    assert loads["bench-35@scale-001.example"] == 35
    assert loads["bench-350@scale-001.example"] == 350
    assert loads["bench-busiest@scale-001.example"] == TINY.busiest == max(loads.values())
    provider = User.objects.get(email="bench-provider@scale-001.example")
    case = client_file(Client.objects.get(user=provider))
    assert case.client.firm == firm
    todos = todos_for(case, party_for(provider, case.client), now=BASE)
    assert any(todo.can_act and todo.grant for todo in todos)


def test_notifications(runs):
    states = Counter(Notification.objects.values_list("state", flat=True))
    assert set(states) == {"scheduled", "sent", "cancelled"}
    channels = Counter(Notification.objects.values_list("channel", flat=True))
    assert set(channels) == {"email", "in_app"}
    due_now = Notification.objects.filter(state="scheduled", channel="email", due_at__lte=BASE)
    assert due_now.exists()
    assert Notification.objects.filter(due_at__gt=BASE, state="scheduled").exists()


def test_reports_run_on_it(runs):
    membership = Membership.objects.select_related("firm", "user").get(
        user__email="admin@scale-001.example"
    )
    report = stuck_report(membership=membership, filters=ReportFilters(), now=BASE)
    rows, cursor = report.rows(limit=50)
    assert len(rows) == 50
    assert cursor
    counts = report.counts()
    stages = {stage["stage"] for stage in counts["by_stage"]}
    assert {"access_pending", "access_expired", "signature", "submitted"} <= stages
    assert counts["total"] > 100
    staff = Membership.objects.select_related("firm", "user").get(
        user__email="bench-35@scale-001.example"
    )
    mine = stuck_report(membership=staff, filters=ReportFilters(), now=BASE).counts()
    assert 0 < mine["total"] < counts["total"]
    durations = stage_durations(membership.firm, now=BASE)
    assert {"access_pending", "signature", "submitted"} <= set(durations)
    trend = weekly_trend(membership.firm, StuckRules.for_firm(membership.firm), now=BASE)
    assert len(trend) == 12
    assert trend[-1][1] > 0


def service_verbs() -> set[str]:
    return recorded_verbs(workflow_services, client_services, credentials, revalidation)


def test_every_service_verb_is_seeded_or_left_out_on_purpose():
    verbs = service_verbs()
    assert {"grant.sent", "round.opened", "client.created"} <= verbs  # the reader finds them
    unknown = verbs - scale.SEEDED_VERBS - set(scale.UNSEEDED_VERBS)
    assert not unknown, f"services record verbs the scale seeder does not know: {sorted(unknown)}"
    assert not scale.SEEDED_VERBS & set(scale.UNSEEDED_VERBS)
    assert verbs >= scale.SEEDED_VERBS, "the seeder writes verbs no service records"


def test_the_seeded_dataset_records_only_the_seeded_verbs(runs):
    seeded = set(AuditEvent.objects.values_list("verb", flat=True).distinct())
    assert seeded <= scale.SEEDED_VERBS
