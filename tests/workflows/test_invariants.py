"""Random sequences of transitions, including wrong ones, never break the invariants:
one open round per enrollment; one live grant per profile; an expired or rejected grant
never becomes active again; every state change has exactly one event; the client's stored
next deadline (the caseload's order) is the one its open steps give."""

import contextlib

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.models import Client
from portal.errors import DomainError
from portal.models import AuditEvent
from tests.clients.factories import make_client
from workflows import services
from workflows.models import AccessGrant, SignatureRound
from workflows.rules import Party
from workflows.selectors import soonest_open_deadline

ACTIONS = [
    "grant_create",
    "claim",
    "mark_active",
    "not_yet",
    "expire",
    "reject",
    "send_again",
    "cancel_grant",
    "round_open",
    "round_revision",
    "round_claim",
    "round_confirm",
    "round_cancel",
    "paper_round",
    "mailed",
    "received",
    "advance_days",
]


def run(action, ctx):
    staff, profile, enrollment, party = (
        ctx["staff"],
        ctx["profile"],
        ctx["enrollment"],
        ctx["party"],
    )
    grant = AccessGrant.objects.filter(profile=profile).order_by("-pk").first()
    signature_round = (
        SignatureRound.objects.filter(enrollment=enrollment).order_by("-number").first()
    )
    match action:
        case "grant_create":
            services.grant_create(profile=profile, method="connection_request", actor=staff)
        case "claim" if grant:
            services.grant_claim_done(grant=grant, party=party, actor=staff)
        case "mark_active" if grant:
            services.grant_mark_active(grant=grant, actor=staff)
        case "not_yet" if grant:
            services.grant_not_yet_done(grant=grant, actor=staff)
        case "expire" if grant:
            services.grant_expire(grant=grant)
        case "reject" if grant:
            services.grant_record_rejected(grant=grant, actor=staff)
        case "send_again" if grant:
            services.grant_send_again(grant=grant, actor=staff)
        case "cancel_grant" if grant:
            services.grant_cancel(grant=grant, actor=staff)
        case "round_open":
            services.round_open(enrollment=enrollment, actor=staff)
        case "paper_round":
            services.round_open(enrollment=enrollment, actor=staff, method="paper")
        case "round_revision":
            services.round_open_revision(enrollment=enrollment, actor=staff, reason="fix")
        case "round_claim" if signature_round:
            services.round_claim_signed(signature_round=signature_round, party=party, actor=staff)
        case "round_confirm" if signature_round:
            services.round_confirm(signature_round=signature_round, actor=staff)
        case "round_cancel" if signature_round:
            services.round_cancel(signature_round=signature_round, actor=staff)
        case "mailed" if signature_round:
            services.round_mark_mailed(signature_round=signature_round, actor=staff)
        case "received" if signature_round:
            services.round_mark_received(signature_round=signature_round, actor=staff)
        case "advance_days":
            ctx["traveller"].shift(timezone.timedelta(days=11))


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=30))
def test_random_transitions_keep_the_invariants(northwind, northwind_staff, actions):
    with transaction.atomic(), time_machine.travel(timezone.now(), tick=False) as traveller:
        client = make_client(northwind, actor=northwind_staff)
        profile = client.profiles.get()
        enrollment = services.enrollment_create(
            profile=profile, kind="initial", actor=northwind_staff
        )
        ctx = {
            "staff": northwind_staff,
            "profile": profile,
            "enrollment": enrollment,
            "party": Party(name="provider", is_provider=True),
            "traveller": traveller,
        }
        history = {}
        for action in actions:
            with contextlib.suppress(DomainError):  # a refused move changes nothing
                run(action, ctx)
            for grant in AccessGrant.objects.filter(profile=profile):
                history.setdefault(grant.pk, []).append(grant.state)
            check_invariants(profile, enrollment)
        for states in history.values():
            if "expired" in states or "rejected" in states:
                first_closed = min(states.index(s) for s in ("expired", "rejected") if s in states)
                assert "active" not in states[first_closed:]
        transaction.set_rollback(True)


def check_invariants(profile, enrollment):
    open_rounds = SignatureRound.objects.filter(
        enrollment=enrollment, state__in=SignatureRound.OPEN_STATES
    )
    assert open_rounds.count() <= 1
    live = AccessGrant.objects.filter(
        profile=profile, state__in=[*AccessGrant.OPEN_STATES, AccessGrant.State.ACTIVE]
    )
    assert live.count() <= 1
    client = Client.objects.annotate(computed=soonest_open_deadline()).get(pk=profile.client_id)
    assert client.next_deadline == client.computed
    # Every state change has its event: each object's state is the "to" of its latest event.
    enrollment.refresh_from_db()
    objects = [
        enrollment,
        *AccessGrant.objects.filter(profile=profile),
        *SignatureRound.objects.filter(enrollment=enrollment),
    ]
    for obj in objects:
        latest = (
            AuditEvent.objects.filter(target_id=str(obj.public_id), data__has_key="to")
            .order_by("-created_at", "-id")
            .first()
        )
        assert latest is not None
        assert latest.data.get("to") == obj.state
