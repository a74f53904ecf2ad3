import pytest
from django.urls import reverse

from clients.models import Client, Organization, Profile
from portal.models import AuditEvent
from portal.npi import is_valid_npi, npi_with_check_digit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("npi", "valid"),
    [
        ("1234567893", True),  # CMS's published example
        ("1234567890", False),  # wrong check digit
        ("123456789", False),  # nine digits
        ("12345678930", False),  # eleven
        ("12345678a3", False),
        (npi_with_check_digit("198765432"), True),
    ],
)
def test_npi_check_digit(npi, valid):
    assert is_valid_npi(npi) is valid


NEW_CLIENT = {
    "first_name": "Ana",
    "last_name": "Rivera",
    "credentials": "LCSW",
    "npi": "1234567893",
    "email": "Ana@Clinic.test",
    "phone": "555-0100",
}


def test_staff_add_a_client_with_an_individual_profile(as_user, northwind_staff, northwind):
    response = as_user(northwind_staff).post(
        reverse("client_new"), {**NEW_CLIENT, "assigned_staff": str(northwind_staff.public_id)}
    )
    client = Client.objects.get(firm=northwind)
    assert response.url == reverse("client_detail", args=[client.public_id])
    assert client.email == "ana@clinic.test"
    assert client.assigned_staff == northwind_staff
    assert list(client.profiles.values_list("kind", flat=True)) == ["individual"]
    assert AuditEvent.objects.filter(verb="client.created", client_uuid=client.public_id).exists()


def test_a_wrong_npi_is_a_clear_form_error(as_user, northwind_staff):
    response = as_user(northwind_staff).post(
        reverse("client_new"), {**NEW_CLIENT, "npi": "1234567890"}
    )
    assert response.status_code == 200
    assert b"check digit is wrong" in response.content
    assert not Client.objects.exists()


def test_npi_is_unique_per_firm_not_across_firms(as_user, northwind_staff, bluebird_staff):
    as_user(northwind_staff).post(reverse("client_new"), NEW_CLIENT)
    response = as_user(northwind_staff).post(reverse("client_new"), NEW_CLIENT)
    assert b"already exists in your firm" in response.content
    as_user(bluebird_staff).post(reverse("client_new"), NEW_CLIENT)
    assert Client.objects.filter(npi="1234567893").count() == 2


def test_an_organization_is_a_profile_of_its_own(as_user, northwind_staff, rivera):
    response = as_user(northwind_staff).post(
        reverse("organization_add", args=[rivera.public_id]),
        {"legal_name": "Rivera Group", "kind": "group", "npi": ""},
        follow=True,
    )
    assert b"needs its own access grant" in response.content
    organization = Organization.objects.get(legal_name="Rivera Group")
    assert organization.profile.kind == Profile.Kind.ORGANIZATIONAL
    assert rivera.profiles.count() == 3


def test_organization_npi_is_validated(as_user, northwind_staff, rivera):
    response = as_user(northwind_staff).post(
        reverse("organization_add", args=[rivera.public_id]),
        {"legal_name": "Bad NPI LLC", "kind": "llc", "npi": "1111111111"},
        follow=True,
    )
    assert b"check digit is wrong" in response.content
    assert not Organization.objects.filter(legal_name="Bad NPI LLC").exists()


def test_the_i_and_a_login_is_the_persons(as_user, northwind_staff, rivera):
    browser = as_user(northwind_staff)
    response = browser.post(
        reverse("client_ia", args=[rivera.public_id]), {"ia_controller": "junk"}, follow=True
    )
    assert b"Select a valid choice" in response.content
    browser.post(
        reverse("client_ia", args=[rivera.public_id]),
        {
            "ia_controller": "someone_else",
            "ia_controller_note": "Former biller",
            "password_reset_likely": "on",
        },
    )
    rivera.refresh_from_db()
    assert rivera.ia_controller == "someone_else"
    assert rivera.password_reset_likely


def test_staff_invite_the_provider_from_the_client_page(
    as_user, northwind_staff, northwind, django_capture_on_commit_callbacks
):
    from django.core import mail

    from tests.clients.factories import make_client

    client = make_client(northwind, actor=northwind_staff, email="newdoc@clinic.test")
    with django_capture_on_commit_callbacks(execute=True):
        as_user(northwind_staff).post(reverse("portal_invite", args=["client", client.public_id]))
    assert mail.outbox[0].to == ["newdoc@clinic.test"]
    # The provider accepts: the account is linked to their client record.
    import re

    path = re.search(r"(/invitations/\S+/)", mail.outbox[0].body).group(1)
    from django.test import Client as Browser

    browser = Browser()
    browser.post(
        path,
        {
            "full_name": "New Doc",
            "password1": "a-very-good-pass-81",
            "password2": "a-very-good-pass-81",
        },
    )
    client.refresh_from_db()
    assert client.user is not None
    assert client.user.email == "newdoc@clinic.test"
    # Providers are not forced into MFA: the to-do page opens.
    assert browser.get(reverse("dashboard")).status_code == 200


def test_provider_invites_their_office_manager(
    as_user, provider, rivera, django_capture_on_commit_callbacks
):
    from django.core import mail

    individual = rivera.profiles.get(kind="individual")
    as_user(provider).post(
        reverse("delegate_add", args=[rivera.public_id]),
        {
            "name": "Bo Biller",
            "email": "bo@rivera.test",
            f"role_{individual.public_id}": "staff_end_user",
        },
    )
    delegate = rivera.delegates.get(email="bo@rivera.test")
    assert delegate.roles.get().cms_role == "staff_end_user"
    with django_capture_on_commit_callbacks(execute=True):
        as_user(provider).post(reverse("portal_invite", args=["delegate", delegate.public_id]))
    assert mail.outbox[0].to == ["bo@rivera.test"]


def test_a_delegate_cannot_add_delegates(as_user, delegate, rivera):
    response = as_user(delegate).post(
        reverse("delegate_add", args=[rivera.public_id]), {"name": "X", "email": "x@y.test"}
    )
    assert response.status_code == 403
    assert not rivera.delegates.filter(email="x@y.test").exists()


def test_provider_cannot_invite_themselves_again_or_see_staff_pages(as_user, provider, rivera):
    client = as_user(provider)
    assert (
        client.post(reverse("portal_invite", args=["client", rivera.public_id])).status_code == 403
    )
    assert client.get(reverse("client_new")).status_code == 403
    assert client.get(reverse("client_detail", args=[rivera.public_id])).status_code == 302


@pytest.mark.parametrize(
    "npi",
    [
        "123456789²",  # a superscript two: str.isdigit() says yes, int() says no
        "١٢٣٤٥٦٧٨٩٣",  # Arabic-Indic digits for 1234567893
        "１２３４５６７８９３",  # fullwidth digits for 1234567893
    ],
)
def test_npi_check_accepts_only_ascii_digits(as_user, northwind_staff, northwind, npi):
    assert is_valid_npi(npi) is False
    response = as_user(northwind_staff).post(reverse("client_new"), {**NEW_CLIENT, "npi": npi})
    assert response.status_code == 200
    assert "An NPI is exactly 10 digits" in response.content.decode()
    assert not Client.objects.filter(firm=northwind).exists()


def test_a_removed_delegate_can_be_added_again_with_history_kept(
    as_user, provider, rivera, northwind
):
    individual = rivera.profiles.get(kind="individual")
    form = {
        "name": "Bo Biller",
        "email": "bo@rivera.test",
        f"role_{individual.public_id}": "staff_end_user",
    }
    browser = as_user(provider)
    browser.post(reverse("delegate_add", args=[rivera.public_id]), form)
    delegate = rivera.delegates.get(email="bo@rivera.test")
    browser.post(reverse("delegate_remove", args=[delegate.public_id]))

    response = browser.post(reverse("delegate_add", args=[rivera.public_id]), form, follow=True)

    assert "already a delegate" not in response.content.decode()
    delegate.refresh_from_db()
    assert delegate.is_active
    verbs = list(
        AuditEvent.objects.filter(firm=northwind, target_id=str(delegate.public_id))
        .order_by("pk")
        .values_list("verb", flat=True)
    )
    assert verbs == ["delegate.saved", "delegate.removed", "delegate.saved"]
