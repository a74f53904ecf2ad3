import pytest
from django.db import IntegrityError, transaction

from clients.models import Profile
from workflows import services
from workflows.errors import NotAllowed, TransitionError
from workflows.models import Enrollment, SignatureRound
from workflows.rules import Party

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrollment(rivera, northwind_staff):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    return services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)


@pytest.fixture
def org_enrollment(rivera, northwind_staff):
    profile = rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)
    return services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)


def provider_party(rivera):
    return Party(name=rivera.display_name, is_provider=True)


def test_round_one_asks_the_provider_to_sign(enrollment, northwind_staff):
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    enrollment.refresh_from_db()
    assert first.number == 1
    assert not first.is_revision
    assert enrollment.state == Enrollment.State.AWAITING_SIGNATURE
    assert enrollment.holder == "provider"
    assert (first.deadline - first.opened_at).days == 20


def test_revision_after_submission_opens_round_n_plus_one(
    enrollment, rivera, provider, northwind_staff
):
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.round_claim_signed(signature_round=first, party=provider_party(rivera), actor=provider)
    services.round_confirm(signature_round=first, actor=northwind_staff)
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.SUBMITTED
    second = services.round_open_revision(
        enrollment=enrollment, actor=northwind_staff, reason="Address corrected"
    )
    enrollment.refresh_from_db()
    assert second.number == 2
    assert second.is_revision
    assert second.reason == "Address corrected"
    assert enrollment.state == Enrollment.State.AWAITING_SIGNATURE
    assert list(enrollment.rounds.values_list("number", "state")) == [
        (1, "confirmed"),
        (2, "awaiting_signature"),
    ]


def test_revision_needs_a_reason(enrollment, northwind_staff):
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.round_confirm(signature_round=first, actor=northwind_staff)
    with pytest.raises(TransitionError, match="Say what changed"):
        services.round_open_revision(enrollment=enrollment, actor=northwind_staff, reason=" ")


def test_revision_only_after_submission(enrollment, northwind_staff):
    with pytest.raises(TransitionError, match="follows a submission"):
        services.round_open_revision(enrollment=enrollment, actor=northwind_staff, reason="x")


def test_at_most_one_open_round_is_a_database_rule(enrollment, northwind_staff):
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    with pytest.raises(IntegrityError), transaction.atomic():
        SignatureRound.objects.create(
            firm=enrollment.firm,
            enrollment=enrollment,
            number=2,
            reason="sneaked in",
            deadline=first.deadline,
        )


def test_opening_a_second_round_while_one_is_open_is_refused(enrollment, northwind_staff):
    services.round_open(enrollment=enrollment, actor=northwind_staff)
    with pytest.raises(TransitionError):
        services.round_open(enrollment=enrollment, actor=northwind_staff)


def test_signing_a_closed_round_is_refused(enrollment, rivera, provider, northwind_staff):
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.round_confirm(signature_round=first, actor=northwind_staff)
    with pytest.raises(TransitionError, match="confirmed"):
        services.round_claim_signed(
            signature_round=first, party=provider_party(rivera), actor=provider
        )


def test_only_the_provider_signs_an_individual_application(
    enrollment, rivera, delegate, northwind_staff
):
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    office = Party(
        name="Olivia", is_provider=False, roles={enrollment.profile_id: "authorized_official"}
    )
    with pytest.raises(NotAllowed, match="Only Ana Rivera, LCSW can sign this, as Provider"):
        services.round_claim_signed(signature_round=first, party=office, actor=delegate)


def test_the_organizations_recorded_official_signs_for_it_not_an_ia_role(
    org_enrollment, rivera, delegate, northwind_staff
):
    """The PLLC's Authorized Official is the provider (recorded so): a delegate who is
    Authorized Official in I&A does not sign its application."""
    first = services.round_open(enrollment=org_enrollment, actor=northwind_staff)
    official = Party(
        name="Olivia",
        is_provider=False,
        roles={org_enrollment.profile_id: "authorized_official"},
        delegate_id=rivera.delegates.get().pk,
    )
    with pytest.raises(NotAllowed, match="as Authorized Official"):
        services.round_claim_signed(signature_round=first, party=official, actor=delegate)
    signed = services.round_claim_signed(
        signature_round=first, party=provider_party(rivera), actor=rivera.user
    )
    assert signed.state == SignatureRound.State.PROVIDER_SAYS_SIGNED


def test_paper_round_mailed_then_received_submits(enrollment, northwind_staff):
    paper = services.round_open(
        enrollment=enrollment, actor=northwind_staff, method=SignatureRound.Method.PAPER
    )
    with pytest.raises(TransitionError, match="recording it received"):
        services.round_confirm(signature_round=paper, actor=northwind_staff)
    services.round_mark_mailed(signature_round=paper, actor=northwind_staff)
    with pytest.raises(TransitionError, match="mailed"):
        services.round_mark_mailed(signature_round=paper, actor=northwind_staff)
    services.round_mark_received(signature_round=paper, actor=northwind_staff)
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.SUBMITTED
    paper.refresh_from_db()
    assert paper.state == SignatureRound.State.RECEIVED
    assert paper.closed_at is not None


def test_provider_mailing_a_paper_round(enrollment, rivera, provider, northwind_staff):
    paper = services.round_open(
        enrollment=enrollment, actor=northwind_staff, method=SignatureRound.Method.PAPER
    )
    mailed = services.round_claim_signed(
        signature_round=paper, party=provider_party(rivera), actor=provider
    )
    assert mailed.state == SignatureRound.State.MAILED
    assert mailed.mailed_at is not None


def test_cancelling_the_round_returns_the_enrollment_to_preparing(enrollment, northwind_staff):
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.round_cancel(signature_round=first, actor=northwind_staff, reason="Wrong form")
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.PREPARING


def test_withdrawing_cancels_the_open_round(enrollment, northwind_staff):
    first = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.enrollment_record_outcome(
        enrollment=enrollment,
        outcome=Enrollment.State.WITHDRAWN,
        actor=northwind_staff,
        reason="Retired",
    )
    first.refresh_from_db()
    assert first.state == SignatureRound.State.CANCELLED


@pytest.mark.parametrize(
    ("start", "to", "ok"),
    [
        ("preparing", "submitted", True),
        ("submitted", "preparing", False),
        # Development is a request with its letter, outcomes are recorded with their date.
        ("submitted", "in_development", False),
        ("in_development", "approved", False),
        ("submitted", "denied", False),
        ("approved", "submitted", False),
        ("withdrawn", "preparing", False),
        ("preparing", "approved", False),
        ("preparing", "awaiting_signature", False),  # only a signature round does that
    ],
)
def test_enrollment_state_moves(enrollment, northwind_staff, start, to, ok):
    Enrollment.objects.filter(pk=enrollment.pk).update(state=start)
    enrollment.refresh_from_db()
    if ok:
        moved = services.enrollment_change_state(
            enrollment=enrollment, to=to, actor=northwind_staff
        )
        assert moved.state == to
    else:
        with pytest.raises(TransitionError):
            services.enrollment_change_state(enrollment=enrollment, to=to, actor=northwind_staff)
        enrollment.refresh_from_db()
        assert enrollment.state == start


def test_an_uploaded_statement_is_confirmed_like_an_electronic_signature(
    enrollment, rivera, provider, northwind_staff
):
    upload = services.round_open(
        enrollment=enrollment, actor=northwind_staff, method=SignatureRound.Method.UPLOAD
    )
    assert upload.is_paper
    with pytest.raises(TransitionError, match="mailed"):
        services.round_mark_mailed(signature_round=upload, actor=northwind_staff)
    services.round_claim_signed(
        signature_round=upload, party=provider_party(rivera), actor=provider
    )
    upload.refresh_from_db()
    assert upload.state == SignatureRound.State.PROVIDER_SAYS_SIGNED
    services.round_confirm(signature_round=upload, actor=northwind_staff)
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.SUBMITTED
