from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from clients.models import Profile
from portal.models import AuditEvent
from workflows import services
from workflows.deadlines import grant_deadline
from workflows.errors import NotAllowed, TransitionError
from workflows.models import AccessGrant
from workflows.rules import Party
from workflows.todos import party_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def individual(rivera):
    return rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)


@pytest.fixture
def organizational(rivera):
    return rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)


@pytest.fixture
def request_sent(individual, northwind_staff):
    return services.grant_create(
        profile=individual,
        method=AccessGrant.Method.CONNECTION_REQUEST,
        actor=northwind_staff,
    )


def as_provider(rivera):
    return Party(name=rivera.display_name, is_provider=True)


def events(grant, verb):
    return AuditEvent.objects.filter(target_id=str(grant.public_id), verb=verb)


def test_sending_a_request_starts_the_30_day_clock(request_sent, rivera):
    assert request_sent.state == AccessGrant.State.AWAITING_PROVIDER
    assert request_sent.deadline == grant_deadline(rivera.firm, request_sent.sent_at)
    assert (request_sent.deadline - request_sent.sent_at).days == 30
    event = events(request_sent, "grant.sent").get()
    assert event.client_uuid == rivera.public_id
    assert event.data == {"from": "prepared", "to": "awaiting_provider"}


def test_provider_claims_then_staff_verify(request_sent, rivera, provider, northwind_staff):
    services.grant_claim_done(grant=request_sent, party=as_provider(rivera), actor=provider)
    grant = services.grant_mark_active(grant=request_sent, actor=northwind_staff)
    assert grant.state == AccessGrant.State.ACTIVE
    assert events(grant, "grant.provider_says_done").get().actor == provider
    assert events(grant, "grant.active").get().actor == northwind_staff


def test_double_click_on_done_is_a_clear_message(request_sent, rivera, provider):
    services.grant_claim_done(grant=request_sent, party=as_provider(rivera), actor=provider)
    with pytest.raises(TransitionError, match="already told us"):
        services.grant_claim_done(grant=request_sent, party=as_provider(rivera), actor=provider)
    assert events(request_sent, "grant.provider_says_done").count() == 1


def test_expired_request_cannot_be_approved(request_sent, northwind_staff):
    with time_machine.travel(request_sent.deadline + timedelta(seconds=1)):
        services.grant_expire(grant=request_sent)
    with pytest.raises(TransitionError, match="expired"):
        services.grant_mark_active(grant=request_sent, actor=northwind_staff)
    request_sent.refresh_from_db()
    assert request_sent.state == AccessGrant.State.EXPIRED


def test_provider_cannot_claim_after_the_deadline(request_sent, rivera, provider):
    with time_machine.travel(request_sent.deadline + timedelta(minutes=1)):
        with pytest.raises(TransitionError, match="expired before it was approved"):
            services.grant_claim_done(grant=request_sent, party=as_provider(rivera), actor=provider)


def test_expiry_happens_exactly_at_the_deadline(request_sent):
    with time_machine.travel(request_sent.deadline - timedelta(seconds=1)):
        with pytest.raises(TransitionError, match="not reached its deadline"):
            services.grant_expire(grant=request_sent)
    with time_machine.travel(request_sent.deadline):
        assert services.grant_expire(grant=request_sent).state == AccessGrant.State.EXPIRED


def test_send_again_links_a_new_attempt_and_keeps_history(request_sent, northwind_staff):
    with time_machine.travel(request_sent.deadline + timedelta(hours=1)):
        services.grant_expire(grant=request_sent)
        attempt = services.grant_send_again(grant=request_sent, actor=northwind_staff)
        assert attempt.previous == request_sent
        assert attempt.state == AccessGrant.State.AWAITING_PROVIDER
        assert attempt.deadline > request_sent.deadline
        with pytest.raises(TransitionError, match="already sent again"):
            services.grant_send_again(grant=request_sent, actor=northwind_staff)
    request_sent.refresh_from_db()
    assert request_sent.state == AccessGrant.State.EXPIRED


def test_send_again_only_after_expiry_or_rejection(request_sent, northwind_staff):
    with pytest.raises(TransitionError, match="awaiting the provider"):
        services.grant_send_again(grant=request_sent, actor=northwind_staff)


def test_rejection_then_send_again(request_sent, northwind_staff):
    services.grant_record_rejected(grant=request_sent, actor=northwind_staff, reason="Wrong NPI")
    assert events(request_sent, "grant.rejected").get().data["reason"] == "Wrong NPI"
    attempt = services.grant_send_again(grant=request_sent, actor=northwind_staff)
    assert attempt.previous_id == request_sent.pk


def test_one_live_grant_per_profile(request_sent, individual, northwind_staff):
    with pytest.raises(TransitionError, match="already has an access grant"):
        services.grant_create(
            profile=individual,
            method=AccessGrant.Method.ADD_SURROGATE,
            actor=northwind_staff,
        )
    assert AccessGrant.objects.filter(profile=individual).count() == 1


def test_add_staff_needs_a_role(individual, northwind_staff):
    with pytest.raises(TransitionError, match="CMS role"):
        services.grant_create(
            profile=individual, method=AccessGrant.Method.ADD_STAFF, actor=northwind_staff
        )


def test_add_staff_and_surrogate_have_no_cms_deadline(individual, organizational, northwind_staff):
    grant = services.grant_create(
        profile=individual,
        method=AccessGrant.Method.ADD_STAFF,
        requested_role="access_manager",
        actor=northwind_staff,
    )
    assert grant.deadline is None
    surrogate = services.grant_create(
        profile=organizational, method=AccessGrant.Method.ADD_SURROGATE, actor=northwind_staff
    )
    assert surrogate.deadline is None


def test_a_staff_end_user_delegate_cannot_approve(request_sent, rivera, delegate):
    delegate_row = rivera.delegates.get()
    delegate_row.roles.update(cms_role="staff_end_user")
    party = party_for(
        delegate, type(rivera).objects.prefetch_related("delegates__roles").get(pk=rivera.pk)
    )
    with pytest.raises(NotAllowed, match="Staff End User cannot grant access"):
        services.grant_claim_done(grant=request_sent, party=party, actor=delegate)
    request_sent.refresh_from_db()
    assert request_sent.state == AccessGrant.State.AWAITING_PROVIDER


@pytest.mark.parametrize(
    ("zone", "sent_utc", "expected_utc"),
    [
        # Chicago, before the fall-back change: 10:00 CDT -> 10:00 CST thirty days later.
        (
            "America/Chicago",
            datetime(2026, 10, 20, 15, 0, tzinfo=UTC),
            datetime(2026, 11, 19, 16, 0, tzinfo=UTC),
        ),
        # New York, across spring-forward: 09:00 EST -> 09:00 EDT.
        (
            "America/New_York",
            datetime(2026, 2, 20, 14, 0, tzinfo=UTC),
            datetime(2026, 3, 22, 13, 0, tzinfo=UTC),
        ),
        # Honolulu has no daylight saving: exactly 30 x 24 hours.
        (
            "Pacific/Honolulu",
            datetime(2026, 3, 1, 20, 0, tzinfo=UTC),
            datetime(2026, 3, 31, 20, 0, tzinfo=UTC),
        ),
    ],
)
def test_deadline_is_counted_in_the_firms_time_zone(
    northwind, individual, northwind_staff, zone, sent_utc, expected_utc
):
    northwind.time_zone = zone
    northwind.save(update_fields=["time_zone"])
    with time_machine.travel(sent_utc, tick=False):
        grant = services.grant_create(
            profile=individual,
            method=AccessGrant.Method.CONNECTION_REQUEST,
            actor=northwind_staff,
        )
    assert grant.deadline == expected_utc


def test_every_change_has_an_event(request_sent, rivera, provider, northwind_staff):
    services.grant_claim_done(grant=request_sent, party=as_provider(rivera), actor=provider)
    services.grant_not_yet_done(grant=request_sent, actor=northwind_staff)
    services.grant_cancel(
        grant=request_sent, actor=northwind_staff, reason="Provider switched firms"
    )
    verbs = list(
        AuditEvent.objects.filter(target_id=str(request_sent.public_id))
        .order_by("created_at", "id")
        .values_list("verb", flat=True)
    )
    assert verbs == [
        "grant.prepared",
        "grant.sent",
        "grant.provider_says_done",
        "grant.not_yet_done",
        "grant.cancelled",
    ]
    assert timezone.now() >= AuditEvent.objects.latest("created_at").created_at
