"""Every notification kind, for every access method and signature method, rendered with
realistic data and read the way its recipient will (issue 10, section 7).

Each scenario runs the real services; the outbox rows hold the rendered subject and bodies.
A message fails on an unformatted placeholder ("{day}"), on an organization's legal name
written in lowercase ("your rivera therapy pllc"), or, for the provider, on a step the method
does not have (an "approve" in an add-staff request, a mailed paper in an e-signature).
"""

import re
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from clients.models import Profile
from notifications.models import Notification
from tests.clients.factories import give_portal_account, make_client
from workflows import services
from workflows.credentials import DEFAULT_KINDS
from workflows.models import AccessGrant, Enrollment, SignatureRound
from workflows.rules import Party

pytestmark = pytest.mark.django_db

PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.]*\}")
LINK = re.compile(r"https?://[^\s\"'<>]+")
PROVIDER_KINDS = {
    "grant.requested",
    "grant.reminder",
    "grant.active",
    "grant.expired",
    "round.opened",
    "round.reminder",
    "round.signed",
    "enrollment.approved",
    "enrollment.denied",
    "enrollment.rejected",
    "enrollment.returned",
    "development.requested",
    "development.reminder",
    "credential.requested",
    "credential.reminder",
    "credential.rejected",
    "credential.expiry_reminder",
}
# Words a provider must not read for a method that has no such step.
NOT_IN_METHOD = {
    AccessGrant.Method.ADD_STAFF: ["approve", "connection request", "surrogate"],
    # The surrogate steps may offer a request to approve instead ("can't find us?").
    AccessGrant.Method.ADD_SURROGATE: ["approve your credentialer", "as staff"],
    AccessGrant.Method.CONNECTION_REQUEST: ["surrogate", "as staff"],
    SignatureRound.Method.ELECTRONIC: [r"\bmail(ed|ing)?\b", "paper", "wet"],
}


# Where workflows decide what to tell whom (the revalidation alerts live beside their import).
WORKFLOWS = Path(settings.BASE_DIR) / "workflows"
MESSAGE_MODULES = [*sorted((WORKFLOWS / "notify").glob("*.py")), WORKFLOWS / "revalidation.py"]


def kinds_in_notify() -> set[str]:
    return {
        kind
        for module in MESSAGE_MODULES
        for kind in re.findall(r'kind="([a-z_]+\.[a-z_.]+)"', module.read_text())
    }


def texts(row: Notification) -> list[str]:
    return [row.title, row.body_text, row.body_html]


def provider(rivera):
    return Party(name=rivera.display_name, is_provider=True)


def run_grant(rivera, staff, method, profile):
    role = "access_manager" if method == AccessGrant.Method.ADD_STAFF else ""
    if method == AccessGrant.Method.CONNECTION_REQUEST:  # only requests expire
        first = services.grant_create(profile=profile, method=method, actor=staff)
        services.grant_expire(grant=first, now=first.deadline + timedelta(minutes=1))
    grant = services.grant_create(profile=profile, method=method, actor=staff, requested_role=role)
    if method == AccessGrant.Method.ADD_SURROGATE:  # "I can't find you" first
        services.grant_firm_not_found(grant=grant, party=provider(rivera), actor=rivera.user)
    services.grant_claim_done(grant=grant, party=provider(rivera), actor=rivera.user)
    services.grant_mark_active(grant=grant, actor=staff)
    return Notification.objects.filter(subject_type="accessgrant")


def run_round(rivera, staff, method, profile):
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=staff)
    signature_round = services.round_open(enrollment=enrollment, actor=staff, method=method)
    services.round_claim_signed(
        signature_round=signature_round, party=provider(rivera), actor=rivera.user
    )
    if method == SignatureRound.Method.PAPER:  # the provider's "I've mailed it"
        services.round_mark_received(signature_round=signature_round, actor=staff)
    else:
        services.round_confirm(signature_round=signature_round, actor=staff)
    return Notification.objects.filter(subject_type__in=["signatureround", "signer"])


def run_signers(rivera, staff, shape, profile):
    """Signer roles other than the provider's own: a reassignment (the provider and a
    group's Delegated Official known by name and email) or an organization's application
    signed by its Authorized Official."""
    from clients import services as client_services
    from tests.clients.factories import add_organization

    group = add_organization(
        rivera,
        actor=staff,
        name=f"Lakeside Medical Group {profile.kind}",
        provider_is_authorized_official=False,
    )
    official = client_services.official_save(
        organization=group,
        actor=staff,
        role="delegated_official" if shape == "reassignment" else "authorized_official",
        name="Dana Hale",
        email=f"dana.{profile.kind}@lakeside.test",
    )
    target = rivera.profiles.get(kind="individual") if shape == "reassignment" else group.profile
    enrollment = services.enrollment_create(profile=target, kind=shape, actor=staff)
    signature_round = services.round_open(enrollment=enrollment, actor=staff, official=official)
    for signer in signature_round.signers.all():
        services.signer_confirm(signer=signer, actor=staff)
    return Notification.objects.filter(subject_type__in=["signatureround", "signer"])


def submitted(profile, staff, kind="initial"):
    enrollment = services.enrollment_create(profile=profile, kind=kind, actor=staff)
    return services.enrollment_change_state(enrollment=enrollment, to="submitted", actor=staff)


def run_outcome(rivera, staff, outcome, profile):
    """Each outcome as the contractor's letter gives it; a denial's reconsideration window
    runs its alerts, is filed and decided."""
    enrollment = submitted(profile, staff)
    services.enrollment_record_outcome(
        enrollment=enrollment,
        outcome=outcome,
        reason="" if outcome == "approved" else "Practice location not verified",
        effective_date=enrollment.created_at.date(),
        actor=staff,
    )
    if outcome == Enrollment.State.DENIED:
        services.reconsideration_record_filed(enrollment=enrollment, actor=staff)
        services.reconsideration_record_decision(
            enrollment=enrollment,
            reversed_=True,
            effective_date=enrollment.created_at.date(),
            actor=staff,
        )
    return Notification.objects.filter(subject_type="enrollment")


def run_development(rivera, staff, holder, profile):
    enrollment = submitted(profile, staff)
    request = services.development_open(
        enrollment=enrollment,
        asked="A copy of the Rivera Therapy PLLC lease for the practice location",
        holder=holder,
        actor=staff,
    )
    if holder == "provider":
        services.development_claim_done(request=request, party=provider(rivera), actor=rivera.user)
    services.development_record_answered(request=request, actor=staff)
    return Notification.objects.filter(subject_type="developmentrequest")


def run_ia(rivera, staff, step, profile):
    """The provider says they regained their own I&A login: staff check it."""
    from clients.services import client_update_ia

    client_update_ia(
        client=rivera,
        actor=staff,
        ia_controller="someone_else",
        ia_controller_note="Former biller",
        password_reset_likely=False,
    )
    services.ia_regain_claim(client=rivera, party=provider(rivera), actor=rivera.user)
    return Notification.objects.filter(subject_type="client")


def run_credential(rivera, staff, code, profile):
    """A document asked for, sent from the provider's phone, refused with a reason, sent
    again and accepted with its expiry (its reminders and alerts scheduled); a CAQH
    re-attestation the provider says they made."""
    from tests.workflows.documents import phone_photo
    from workflows import credentials

    kind = credentials.kind_for(rivera.firm, code)
    credential = credentials.credential_request(
        profile=profile, kind=kind, actor=staff, state_code="TX" if kind.has_state else ""
    )
    today = credential.created_at.astimezone(rivera.firm.zone).date()
    if kind.needs_file:
        send = partial(
            credentials.credential_upload,
            credential=credential,
            actor=rivera.user,
            party=provider(rivera),
        )
        send(upload=phone_photo())
        credentials.credential_reject(
            credential=credential, actor=staff, reason="The photo cuts off the policy dates"
        )
        send(upload=phone_photo())
    else:
        credentials.credential_claim_attested(
            credential=credential, party=provider(rivera), actor=rivera.user
        )
    credentials.credential_accept(
        credential=credential,
        actor=staff,
        issued_on=today,
        expires_on=today + timedelta(days=400) if kind.expires else None,
    )
    return Notification.objects.filter(subject_type="credential")


def run_revalidation(rivera, staff, step, profile):
    from workflows.revalidation import revalidation_set_due

    today = timezone.now().astimezone(rivera.firm.zone).date()
    revalidation_set_due(profile=profile, due_on=today + timedelta(days=120), actor=staff)
    return Notification.objects.filter(subject_type="enrollment", kind__startswith="revalidation")


def run_bounce(rivera, staff, step, profile):
    """The mail server refuses the provider's address for good (a 550 to RCPT) when CMS's
    access request is emailed to them: their staff hear whose address bounced, and where."""
    import smtplib
    from unittest import mock

    from django.core.mail.backends.locmem import EmailBackend

    from notifications import delivery

    def refuse_the_provider(backend, messages):
        if rivera.email in messages[0].to:
            raise smtplib.SMTPRecipientsRefused(
                {rivera.email: (550, f"5.1.1 <{rivera.email}>: Recipient address rejected")}
            )
        return len(messages)

    services.grant_create(profile=profile, method="connection_request", actor=staff)
    with mock.patch.object(EmailBackend, "send_messages", refuse_the_provider):
        delivery.deliver_due()
    return Notification.objects.filter(kind="email.bouncing")


RUNS = {
    "ia": run_ia,
    "grant": run_grant,
    "round": run_round,
    "signers": run_signers,
    "outcome": run_outcome,
    "development": run_development,
    "credential": run_credential,
    "revalidation": run_revalidation,
    "bounce": run_bounce,
}
SCENARIOS = [
    *[("grant", method) for method in AccessGrant.Method.values],
    *[("round", method) for method in SignatureRound.Method.values],
    *[("outcome", outcome) for outcome in Enrollment.OUTCOMES],
    *[("development", holder) for holder in ("provider", "firm")],
    ("signers", "reassignment"),
    ("signers", "initial"),
    ("ia", "regain"),
    *[("credential", kind["code"].value) for kind in DEFAULT_KINDS],
    ("revalidation", "due"),
    ("bounce", "550"),
]


@pytest.mark.parametrize("profile_kind", [Profile.Kind.INDIVIDUAL, Profile.Kind.ORGANIZATIONAL])
@pytest.mark.parametrize(("workflow", "method"), SCENARIOS)
def test_every_message_reads_right(rivera, northwind_staff, workflow, method, profile_kind):
    profile = rivera.profiles.get(kind=profile_kind)
    rows = list(RUNS[workflow](rivera, northwind_staff, method, profile))
    if (workflow, method) != ("outcome", "withdrawn"):  # the firm withdrew: nothing to tell
        assert rows, "the scenario sent nothing"
    legal_name = "Rivera Therapy PLLC"
    problems = []
    for row in rows:
        for text in texts(row):
            if found := PLACEHOLDER.findall(text):
                problems.append(f"{row.kind}: unformatted {found} in {text[:80]!r}")
            if legal_name.lower() in text:
                problems.append(f"{row.kind}: lowercased legal name in {text[:80]!r}")
            if row.kind in PROVIDER_KINDS:
                # Words, not links: a sign-in link's random token once spelt "wet".
                words = LINK.sub("", text).lower()
                for word in NOT_IN_METHOD.get(method, []):
                    if re.search(word, words):
                        problems.append(f"{row.kind} ({method}) names {word!r}: {text[:90]!r}")
    assert not problems, "\n".join(sorted(set(problems)))


def test_the_scenarios_cover_every_notification_kind(northwind, northwind_staff):
    """A new kind in workflows/notify/ fails here until a scenario above sends it."""
    for index, (workflow, method) in enumerate(SCENARIOS):
        client = make_client(northwind, actor=northwind_staff, last_name=f"Scenario{index}")
        give_portal_account(client)
        client.refresh_from_db()
        RUNS[workflow](client, northwind_staff, method, client.profiles.get())
    seen = set(Notification.objects.values_list("kind", flat=True))
    assert kinds_in_notify() - seen == set()


def test_a_link_that_spells_a_word_is_not_that_word():
    """The flake this guards against: a sign-in link's random token containing "wet"."""
    text = "Sign round 2 electronically: http://127.0.0.1:8000/go/AbWetQ9x/ then done."
    assert not re.search(r"wet", LINK.sub("", text).lower())
    assert "electronically" in LINK.sub("", text)
