"""The case file: one read model for the caseload, the client page, the to-dos and the status
report. The moves it offers are exactly the ones the services accept; its two load shapes
(live work only, and with history) read the same open work."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Profile
from portal.errors import DomainError
from tests.workflows.test_credentials import on_file
from workflows import moves, services, views
from workflows.casefile import NotLoaded, client_file
from workflows.models import AccessGrant, SignatureRound
from workflows.rules import Party
from workflows.selectors import CaseloadFilters, caseload_matching

pytestmark = pytest.mark.django_db


def individual(client):
    return client.profiles.get(kind=Profile.Kind.INDIVIDUAL)


def provider_party(client):
    return Party(name=client.display_name, is_provider=True)


def case_of(client, **options):
    return client_file(
        Client.objects.select_related("firm", "assigned_staff").get(pk=client.pk), **options
    )


class RolledBack(Exception):
    pass


def accepted_by_services(actions: dict, obj, run) -> frozenset[str]:
    """The actions of `actions` the services carry out on `obj` as it is now (each tried in
    a transaction rolled back)."""
    accepted = set()
    for action, (function, _success) in actions.items():
        fresh = type(obj).objects.get(pk=obj.pk)
        try:
            with transaction.atomic():
                run(function, fresh)
                accepted.add(action)
                raise RolledBack
        except RolledBack:
            pass
        except DomainError:
            pass
    return frozenset(accepted)


def run_grant(function, grant):
    extra = {"reason": "x"} if function in views.TAKES_REASON else {}
    function(grant=grant, actor=grant._staff, **extra)


# --- grants -----------------------------------------------------------------------------


def _grant(rivera, staff, provider, state: str, method="connection_request"):
    profile = individual(rivera)
    grant = services.grant_create(
        profile=profile,
        method=method,
        actor=staff,
        requested_role="access_manager" if method == "add_staff" else "",
        send=state != "prepared",
    )
    if state == "provider_says_done":
        services.grant_claim_done(grant=grant, party=provider_party(rivera), actor=provider)
    elif state == "active":
        services.grant_mark_active(grant=grant, actor=staff)
    elif state == "expired":
        services.grant_record_expired(grant=grant, actor=staff)
    elif state == "cancelled":
        services.grant_cancel(grant=grant, actor=staff)
    grant.refresh_from_db()
    assert grant.state == state
    return grant


@pytest.mark.parametrize(
    ("state", "method"),
    [
        ("prepared", "connection_request"),
        ("awaiting_provider", "connection_request"),
        ("awaiting_provider", "add_surrogate"),
        ("provider_says_done", "add_staff"),
        ("active", "connection_request"),
        ("expired", "connection_request"),
        ("cancelled", "connection_request"),
    ],
)
def test_a_grant_is_offered_exactly_the_moves_the_services_accept(
    rivera, northwind_staff, provider, state, method
):
    grant = _grant(rivera, northwind_staff, provider, state, method)
    step = next(s for s in case_of(rivera, history=True).profiles if s.profile.is_individual)
    offered = next(g.actions for g in step.grants if g.grant.pk == grant.pk)

    def run(function, fresh):
        fresh._staff = northwind_staff
        run_grant(function, fresh)

    moves_only = {k: v for k, v in views.GRANT_ACTIONS.items() if k != "send-again"}
    assert offered == accepted_by_services(moves_only, grant, run)


def test_a_prepared_grant_is_not_offered_mark_active(as_user, rivera, northwind_staff, provider):
    """The client page offered "Verified: mark active" on every open grant; a prepared one
    (not sent yet) cannot become active, and the service refused it."""
    grant = _grant(rivera, northwind_staff, provider, "prepared")
    page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    html = page.content.decode()
    assert reverse("grant_action", args=[grant.public_id, "mark-active"]) not in html
    assert reverse("grant_action", args=[grant.public_id, "cancel"]) in html


# --- signature rounds -------------------------------------------------------------------


def _round(rivera, staff, provider, method: str, state: str):
    enrollment = services.enrollment_create(profile=individual(rivera), kind="initial", actor=staff)
    signature_round = services.round_open(enrollment=enrollment, actor=staff, method=method)
    if state == "provider_says_signed":
        services.round_claim_signed(
            signature_round=signature_round, party=provider_party(rivera), actor=provider
        )
    elif state == "mailed":
        services.round_mark_mailed(signature_round=signature_round, actor=staff)
    elif state == "confirmed":
        services.round_confirm(signature_round=signature_round, actor=staff)
    elif state == "cancelled":
        services.round_cancel(signature_round=signature_round, actor=staff)
    signature_round.refresh_from_db()
    assert signature_round.state == state
    return signature_round


@pytest.mark.parametrize(
    ("method", "state"),
    [
        ("electronic", "awaiting_signature"),
        ("electronic", "provider_says_signed"),
        ("upload", "awaiting_signature"),
        ("paper", "awaiting_signature"),
        ("upload", "provider_says_signed"),
        ("paper", "mailed"),
        ("electronic", "confirmed"),
        ("electronic", "cancelled"),
    ],
)
def test_a_round_is_offered_exactly_the_moves_the_services_accept(
    rivera, northwind_staff, provider, method, state
):
    signature_round = _round(rivera, northwind_staff, provider, method, state)
    case = case_of(rivera, history=True)
    offered = next(
        r.actions
        for p in case.profiles
        for e in p.enrollments
        for r in e.rounds
        if r.signature_round.pk == signature_round.pk
    )

    def run(function, fresh):
        extra = {"reason": "x"} if function in views.TAKES_REASON else {}
        function(signature_round=fresh, actor=northwind_staff, **extra)

    assert offered == accepted_by_services(views.ROUND_ACTIONS, signature_round, run)


# --- development requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("holder", "state"),
    [
        ("firm", "open"),
        ("provider", "open"),
        ("provider", "provider_says_done"),
        ("firm", "answered"),
        ("firm", "cancelled"),
    ],
)
def test_a_development_request_is_offered_exactly_the_moves_the_services_accept(
    submitted, rivera, northwind_staff, provider, holder, state
):
    request = services.development_open(
        enrollment=submitted, actor=northwind_staff, asked="Proof of address", holder=holder
    )
    if state == "provider_says_done":
        services.development_claim_done(
            request=request, party=provider_party(rivera), actor=provider
        )
    elif state == "answered":
        services.development_record_answered(request=request, actor=northwind_staff)
    elif state == "cancelled":
        services.development_cancel(request=request, actor=northwind_staff)
    request.refresh_from_db()
    assert request.state == state
    case = case_of(rivera, history=True)
    offered = next(
        d.actions
        for p in case.profiles
        for e in p.enrollments
        for d in e.developments
        if d.request.pk == request.pk
    )

    def run(function, fresh):
        function(fresh, {"on": None, "reason": "x"}, northwind_staff)

    assert offered == accepted_by_services(views.DEVELOPMENT_ACTIONS, request, run)


def test_the_views_actions_are_the_moves():
    """A new action on a step cannot be added to a view without its rule in `moves`."""
    assert set(views.GRANT_ACTIONS) - {"send-again"} == set(moves.GRANT_MOVES)
    assert set(views.ROUND_ACTIONS) == set(moves.ROUND_MOVES)
    assert set(views.DEVELOPMENT_ACTIONS) == set(moves.DEVELOPMENT_MOVES)


# --- one reading of what is open --------------------------------------------------------


def test_the_caseload_and_the_client_page_read_the_same_open_work(
    submitted, rivera, northwind_staff, provider
):
    """The caseload loads live work only, the client page everything: what each calls open
    is the same, in the same order."""
    profile = individual(rivera)
    old = services.grant_create(profile=profile, method="connection_request", actor=northwind_staff)
    services.grant_record_rejected(grant=old, actor=northwind_staff)
    services.grant_send_again(grant=old, actor=northwind_staff)
    services.development_open(
        enrollment=submitted, actor=northwind_staff, asked="Proof of address", holder="provider"
    )
    organizational = rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)
    enrollment = services.enrollment_create(
        profile=organizational, kind="initial", actor=northwind_staff
    )
    services.round_open(  # the provider is the PLLC's Authorized Official
        enrollment=enrollment, actor=northwind_staff, method=SignatureRound.Method.PAPER
    )
    on_file(rivera, northwind_staff, "malpractice", expires_in=200)  # far: nothing to do
    on_file(rivera, northwind_staff, "board", expires_in=10)  # near its expiry: open
    live, full = case_of(rivera), case_of(rivera, history=True)
    assert live.open_items == full.open_items
    assert [item.label for item in full.open_items] == [
        "Board certification · Individual profile",  # expires in 10 days
        "Signature round 1 · Rivera Therapy PLLC",  # 20 days to sign
        "Access · Individual profile",  # 30 days to approve
        "Development request 1 · Individual profile",  # 30 days after the letter
    ]
    assert len(live.profiles[0].credentials + live.profiles[1].credentials) == 1
    assert len(full.profiles[0].credentials + full.profiles[1].credentials) == 2
    assert live.connected == full.connected
    assert [p.profile.pk for p in live.profiles] == [p.profile.pk for p in full.profiles]


def test_parts_not_loaded_refuse_to_answer(rivera, northwind_staff):
    grant = services.grant_create(
        profile=individual(rivera), method="connection_request", actor=northwind_staff
    )
    services.grant_record_expired(grant=grant, actor=northwind_staff)
    live = case_of(rivera, delegates=False)
    with pytest.raises(NotLoaded):
        _ = live.profiles[0].retryable
    with pytest.raises(NotLoaded):
        _ = live.delegates
    full = case_of(rivera, history=True)
    assert [g.pk for p in full.profiles for g in p.retryable] == [grant.pk]


def test_a_signer_is_confirmed_on_their_own_only_in_a_round_of_several(
    rivera, northwind_staff, provider
):
    signature_round = _round(rivera, northwind_staff, provider, "electronic", "awaiting_signature")
    case = case_of(rivera, history=True)
    (round_step,) = [r for p in case.profiles for e in p.enrollments for r in e.rounds]
    assert round_step.signature_round.pk == signature_round.pk
    assert [s.may_confirm for s in round_step.signers] == [False]  # the round's confirm does it


def test_an_overdue_clock_is_counted_in_the_header(rivera, northwind_staff):
    grant = services.grant_create(
        profile=individual(rivera), method="connection_request", actor=northwind_staff
    )
    AccessGrant.objects.filter(pk=grant.pk).update(deadline=timezone.now() - timedelta(days=1))
    case = case_of(rivera)
    assert case.overdue == 1
    assert case.next_item.label == "Access · Individual profile"
    assert case.by_holder == [("Provider", 1)]


@pytest.mark.parametrize(
    ("expires_in", "holder"), [(10, "Provider"), (-3, "Provider"), (200, None)]
)
def test_the_caseload_holder_filter_finds_what_the_case_file_says_the_holder_holds(
    rivera, northwind_staff, expires_in, holder
):
    """A credential on file near or past its expiry is the provider's to renew: the
    caseload's "Ball with: provider" filter finds the client the row says it for."""
    on_file(rivera, northwind_staff, expires_in=expires_in)
    holders = dict(case_of(rivera).by_holder)
    assert ("Provider" in holders) is (holder == "Provider")
    membership = northwind_staff.memberships.get()
    found = caseload_matching(membership=membership, filters=CaseloadFilters(holder="provider"))
    assert found.filter(pk=rivera.pk).exists() is (holder == "Provider")
