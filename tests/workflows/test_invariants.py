"""Random sequences of transitions, including wrong ones and backdated dates, never break
the invariants: one open round per enrollment, complete exactly when all its signers signed; one live grant
per profile; an expired or
rejected grant never becomes active again; every open clock has a deadline; an enrollment in
development has an open development request, and one with an outcome has no open round or
request; every state change has exactly one event; the client's stored next deadline (the
caseload's order) is the soonest open clock, and its open steps (the stuck report's rows)
are what a rebuild gives."""

import contextlib
from collections import Counter
from datetime import timedelta

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
from workflows import open_steps, services
from workflows.models import AccessGrant, DevelopmentRequest, Enrollment, SignatureRound
from workflows.open_steps import soonest_open_deadline
from workflows.rules import Party

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
    "submit",
    "backdated_round",
    "development_provider",
    "development_backdated",
    "development_claim",
    "development_answered",
    "development_cancel",
    "approve",
    "deny",
    "reject_enrollment",
    "return_enrollment",
    "withdraw",
    "reconsideration_filed",
    "reconsideration_declined",
    "reconsideration_reversed",
    "reconsideration_upheld",
    "signer_confirm",
    "grant_undo",
    "signer_undo",
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
    request = DevelopmentRequest.objects.filter(enrollment=enrollment).order_by("-number").first()
    today = timezone.localdate(timezone=enrollment.firm.zone)

    def outcome(to, **extra):
        services.enrollment_record_outcome(
            enrollment=enrollment, outcome=to, actor=staff, reason="letter", **extra
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
        case "submit":
            services.enrollment_change_state(enrollment=enrollment, to="submitted", actor=staff)
        case "backdated_round":
            services.round_open_revision(
                enrollment=enrollment,
                actor=staff,
                reason="fix",
                submitted_on=today - timedelta(days=15),
            )
        case "development_provider":
            services.development_open(
                enrollment=enrollment, actor=staff, asked="license", holder="provider"
            )
        case "development_backdated":
            services.development_open(
                enrollment=enrollment,
                actor=staff,
                asked="address",
                holder="firm",
                letter_on=today - timedelta(days=25),
            )
        case "development_claim" if request:
            services.development_claim_done(request=request, party=party, actor=staff)
        case "development_answered" if request:
            services.development_record_answered(request=request, actor=staff)
        case "development_cancel" if request:
            services.development_cancel(request=request, actor=staff)
        case "approve":
            outcome("approved", effective_date=today)
        case "deny":
            outcome("denied", decided_on=today - timedelta(days=10))
        case "reject_enrollment":
            outcome("rejected")
        case "return_enrollment":
            outcome("returned")
        case "withdraw":
            outcome("withdrawn")
        case "reconsideration_filed":
            services.reconsideration_record_filed(enrollment=enrollment, actor=staff)
        case "reconsideration_declined":
            services.reconsideration_decline(enrollment=enrollment, actor=staff, reason="no")
        case "reconsideration_reversed":
            services.reconsideration_record_decision(
                enrollment=enrollment, actor=staff, reversed_=True, effective_date=today
            )
        case "grant_undo" if grant:
            services.grant_undo_claim(grant=grant, party=party, actor=staff)
        case "signer_undo" if signature_round:
            signer = signature_round.signers.order_by("pk").first()
            services.signer_undo_claim(signer=signer, party=party, actor=staff)
        case "signer_confirm" if signature_round:
            signer = signature_round.signers.order_by("pk").first()
            services.signer_confirm(signer=signer, actor=staff)
        case "reconsideration_upheld":
            services.reconsideration_record_decision(
                enrollment=enrollment, actor=staff, reversed_=False
            )


@pytest.mark.django_db
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=40))
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
    assert open_steps.differences(Client.objects.filter(pk=profile.client_id)) == ([], Counter())
    enrollment.refresh_from_db()
    open_requests = DevelopmentRequest.objects.filter(
        enrollment=enrollment, state__in=DevelopmentRequest.OPEN_STATES
    )
    # A round is complete exactly when every one of its signers has signed.
    for signature_round in SignatureRound.objects.filter(enrollment=enrollment):
        states = set(signature_round.signers.values_list("state", flat=True))
        assert states, "a round without signers"
        complete = signature_round.state in ("confirmed", "received")
        assert complete == (states == {"signed"}) or signature_round.state == "cancelled"
    # Every open clock has a deadline.
    assert not open_requests.filter(deadline__isnull=True).exists()
    assert not AccessGrant.objects.filter(
        profile=profile,
        state__in=AccessGrant.PENDING_STATES,
        method="connection_request",
        deadline__isnull=True,
    ).exists()
    if enrollment.reconsideration == Enrollment.Reconsideration.OPEN:
        assert enrollment.state == Enrollment.State.DENIED
        assert enrollment.reconsideration_deadline is not None
    if enrollment.state == Enrollment.State.IN_DEVELOPMENT:
        assert open_requests.exists()
    if enrollment.state in Enrollment.OUTCOMES:
        assert not open_rounds.exists()
        assert not open_requests.exists()
    if enrollment.state == Enrollment.State.APPROVED:
        assert enrollment.effective_date is not None
    # Every state change has its event: each object's state is the "to" of its latest event.
    objects = [
        enrollment,
        *AccessGrant.objects.filter(profile=profile),
        *SignatureRound.objects.filter(enrollment=enrollment),
        *DevelopmentRequest.objects.filter(enrollment=enrollment),
    ]
    for obj in objects:
        latest = (
            AuditEvent.objects.filter(target_id=str(obj.public_id), data__has_key="to")
            .order_by("-created_at", "-id")
            .first()
        )
        assert latest is not None
        assert latest.data.get("to") == obj.state
