"""Who must sign (issue 10, section 2): the provider an individual application, an
Authorized or Delegated Official of the organization an organizational one, both a
reassignment. Each signer has their own to-do, "I've signed", reminders and verification;
the round is complete when every signer has signed."""

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from clients import services as client_services
from clients.models import Client, Official, Organization, Profile
from notifications.models import Notification
from tests.clients.factories import add_organization
from workflows import services
from workflows.casefile import client_file
from workflows.errors import NotAllowed, TransitionError
from workflows.models import Enrollment, SignatureRound, Signer
from workflows.rules import Party
from workflows.todos import party_for, todos_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(rivera, northwind_staff):
    """A group practice whose Delegated Official is the office manager (a delegate with her
    own login), not the provider."""
    organization = add_organization(
        rivera,
        actor=northwind_staff,
        name="Lakeside Medical Group",
        provider_is_authorized_official=False,
    )
    client_services.official_save(
        organization=organization,
        actor=northwind_staff,
        role=Official.Role.DELEGATED,
        delegate=rivera.delegates.get(),
        email="olivia.pecos@lakeside.test",
    )
    return organization


def provider(rivera):
    return Party(name=rivera.display_name, is_provider=True)


def office(rivera):
    delegate = rivera.delegates.get()
    return Party(name=delegate.name, is_provider=False, delegate_id=delegate.pk)


def reassignment(rivera, staff):
    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    return services.enrollment_create(profile=individual, kind="reassignment", actor=staff)


def test_an_individual_application_is_signed_by_the_provider_alone(rivera, northwind_staff):
    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    enrollment = services.enrollment_create(
        profile=individual, kind="initial", actor=northwind_staff
    )
    signature_round = services.round_open(
        enrollment=enrollment, actor=northwind_staff, provider_pecos_email="ana@pecos.test"
    )
    signer = signature_round.signers.get()
    assert (signer.role, signer.is_provider, signer.pecos_email) == (
        "provider",
        True,
        "ana@pecos.test",
    )


def test_an_organizational_application_needs_a_recorded_official(rivera, northwind_staff):
    organization = add_organization(
        rivera, actor=northwind_staff, name="Bay Group", provider_is_authorized_official=False
    )
    enrollment = services.enrollment_create(
        profile=organization.profile, kind="initial", actor=northwind_staff
    )
    with pytest.raises(TransitionError, match="Record the organization's Authorized"):
        services.round_open(enrollment=enrollment, actor=northwind_staff)
    assert not SignatureRound.objects.filter(enrollment=enrollment).exists()
    first = client_services.official_save(
        organization=organization,
        actor=northwind_staff,
        role="authorized_official",
        name="Dana Hale",
        email="dana@baygroup.test",
    )
    client_services.official_save(
        organization=organization,
        actor=northwind_staff,
        role="delegated_official",
        name="Sam Ortiz",
        email="sam@baygroup.test",
    )
    with pytest.raises(TransitionError, match="Choose which"):
        services.round_open(enrollment=enrollment, actor=northwind_staff)
    other = Official.objects.get(organization__legal_name="Rivera Therapy PLLC")
    with pytest.raises(TransitionError, match="not one of this organization's"):
        services.round_open(enrollment=enrollment, actor=northwind_staff, official=other)
    signature_round = services.round_open(
        enrollment=enrollment, actor=northwind_staff, official=first
    )
    signer = signature_round.signers.get()
    assert (signer.name, signer.role, signer.pecos_email, signer.is_provider) == (
        "Dana Hale",
        "authorized_official",
        "dana@baygroup.test",
        False,
    )
    # Someone known only by name and email is asked by email, at that address.
    opened = Notification.objects.get(kind="round.opened", channel="email")
    assert opened.to_email == "dana@baygroup.test"
    assert "You sign as Authorized Official of Bay Group." in opened.body_text
    assert "CMS will email dana@baygroup.test" in opened.body_text


def test_a_reassignment_needs_both_signatures_each_verified(
    rivera, group, northwind_staff, delegate
):
    enrollment = reassignment(rivera, northwind_staff)
    with pytest.raises(TransitionError, match="Choose which"):  # the PLLC's AO and the group's DO
        services.round_open(enrollment=enrollment, actor=northwind_staff)
    official = group.officials.get()
    signature_round = services.round_open(
        enrollment=enrollment, actor=northwind_staff, official=official
    )
    signers = {s.role: s for s in signature_round.signers.all()}
    assert set(signers) == {"provider", "delegated_official"}
    assert signers["delegated_official"].pecos_email == "olivia.pecos@lakeside.test"

    # The provider signs from their login: one of two; the round still waits.
    services.signer_claim_signed(
        signer=signers["provider"], party=provider(rivera), actor=rivera.user
    )
    signature_round.refresh_from_db()
    assert signature_round.state == SignatureRound.State.AWAITING_SIGNATURE
    with pytest.raises(NotAllowed, match="Only Olivia Office can sign this"):
        services.signer_claim_signed(
            signer=signers["delegated_official"], party=provider(rivera), actor=rivera.user
        )
    services.signer_confirm(signer=signers["provider"], actor=northwind_staff)
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.AWAITING_SIGNATURE  # incomplete: one of two

    # The group's Delegated Official signs from her own login; staff verify: complete.
    services.signer_claim_signed(
        signer=signers["delegated_official"], party=office(rivera), actor=delegate
    )
    signature_round.refresh_from_db()
    assert signature_round.state == SignatureRound.State.PROVIDER_SAYS_SIGNED
    services.signer_confirm(signer=signers["delegated_official"], actor=northwind_staff)
    signature_round.refresh_from_db()
    enrollment.refresh_from_db()
    assert signature_round.state == SignatureRound.State.CONFIRMED
    assert enrollment.state == Enrollment.State.SUBMITTED


def test_an_ia_role_alone_never_lets_a_delegate_sign(rivera, northwind_staff, delegate):
    pllc = rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)
    enrollment = services.enrollment_create(profile=pllc, kind="initial", actor=northwind_staff)
    signature_round = services.round_open(enrollment=enrollment, actor=northwind_staff)
    ia_official = Party(
        name="Olivia",
        is_provider=False,
        roles={pllc.pk: "authorized_official"},
        delegate_id=rivera.delegates.get().pk,
    )
    with pytest.raises(NotAllowed):
        services.round_claim_signed(
            signature_round=signature_round, party=ia_official, actor=delegate
        )


def test_each_signer_has_their_own_to_do_and_reminders(rivera, group, northwind_staff, delegate):
    enrollment = reassignment(rivera, northwind_staff)
    signature_round = services.round_open(
        enrollment=enrollment, actor=northwind_staff, official=group.officials.get()
    )
    case = client_file(Client.objects.get(pk=rivera.pk))
    theirs = [t for t in todos_for(case, party_for(delegate, case.client)) if t.signer]
    assert [(t.title, t.can_act) for t in theirs] == [
        ("Sign round 1 of Ana's application", False),  # a delegate's list says whose
        ("Sign round 1 as Delegated Official of Lakeside Medical Group", True),
    ]
    assert any("CMS will email olivia.pecos@lakeside.test" in step for step in theirs[1].steps)
    assert theirs[0].refusal == "Only Ana Rivera, LCSW can sign this, as Provider."
    reminders = Notification.objects.filter(kind="round.reminder", channel="email")
    assert set(reminders.values_list("to_email", flat=True)) == {
        "rivera@clinic.test",
        "office@rivera.test",
    }
    olivia = signature_round.signers.get(role="delegated_official")
    services.signer_claim_signed(signer=olivia, party=office(rivera), actor=delegate)
    waiting = reminders.filter(state=Notification.State.SCHEDULED)
    assert set(waiting.values_list("to_email", flat=True)) == {"rivera@clinic.test"}
    assert Notification.objects.filter(kind="round.verify").exists()


def test_the_signers_to_do_shows_where_cms_will_email(
    as_user, rivera, group, northwind_staff, delegate
):
    enrollment = reassignment(rivera, northwind_staff)
    signature_round = services.round_open(
        enrollment=enrollment, actor=northwind_staff, official=group.officials.get()
    )
    page = as_user(delegate).get(reverse("dashboard")).content.decode()
    assert "CMS will email olivia.pecos@lakeside.test" in page
    signer = signature_round.signers.get(role="delegated_official")
    as_user(delegate).post(reverse("todo_done", args=["signer", signer.public_id]))
    signer.refresh_from_db()
    assert signer.state == Signer.State.SAYS_SIGNED
    provider_signer = signature_round.signers.get(role="provider")
    response = as_user(delegate).post(
        reverse("todo_done", args=["signer", provider_signer.public_id]), follow=True
    )
    assert b"Only Ana Rivera, LCSW can sign this" in response.content


def test_staff_record_an_official_from_the_client_page(as_user, rivera, northwind_staff):
    organization = rivera.organizations.get()
    browser = as_user(northwind_staff)
    url = reverse("official_add", args=[organization.public_id])
    response = browser.post(url, {"role": "authorized_official", "person": "other"}, follow=True)
    assert b"Give the name and the PECOS email" in response.content
    response = browser.post(url, {"role": "nonsense", "person": "provider"}, follow=True)
    assert b"Select a valid choice" in response.content
    response = browser.post(
        url,
        {
            "role": "delegated_official",
            "person": "other",
            "name": "Dana Hale",
            "email": "dana@rivera.test",
        },
        follow=True,
    )
    assert b"Recorded who signs for Rivera Therapy PLLC" in response.content
    page = response.content.decode()
    assert "Dana Hale, <strong>Delegated Official</strong> · CMS emails dana@rivera.test" in page
    response = browser.post(
        url,
        {
            "role": "authorized_official",
            "person": "other",
            "name": "Dana again",
            "email": "DANA@rivera.test",
        },
        follow=True,
    )
    assert b"already an official of Rivera Therapy PLLC" in response.content


def test_a_reassignment_is_to_an_organization_on_the_individual_profile(northwind, northwind_staff):
    from tests.clients.factories import make_client

    solo = make_client(northwind, actor=northwind_staff)
    with pytest.raises(TransitionError, match="add the organization"):
        services.enrollment_create(
            profile=solo.profiles.get(), kind="reassignment", actor=northwind_staff
        )
    organization = add_organization(solo, actor=northwind_staff, name="Solo PLLC")
    with pytest.raises(TransitionError, match="individual profile"):
        services.enrollment_create(
            profile=organization.profile, kind="reassignment", actor=northwind_staff
        )


def test_existing_rounds_migrate_to_one_signer(rivera, northwind_staff):
    """workflows/migrations/0007: a round without signers gets the provider, in its state."""
    import importlib

    migration = importlib.import_module("workflows.migrations.0007_one_signer_per_existing_round")
    pllc = rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)
    enrollment = services.enrollment_create(profile=pllc, kind="initial", actor=northwind_staff)
    signature_round = services.round_open(enrollment=enrollment, actor=northwind_staff)
    services.round_confirm(signature_round=signature_round, actor=northwind_staff)
    Signer.objects.all().delete()
    migration.add_signers(django_apps, None)
    migration.add_signers(django_apps, None)  # again: nothing more
    signer = Signer.objects.get()
    assert (signer.role, signer.state, signer.is_provider, signer.name) == (
        "authorized_official",
        "signed",
        True,
        "Ana Rivera, LCSW",
    )
    assert Organization.objects.count() == 1
