"""Input leniency (issue 11, finding 13): repeated CSV headers, invisible characters and
IP-literal domains in emails, and an oversized form post."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from clients.importing import COLUMNS, plan_import
from clients.models import Client
from portal.models import validate_portal_email

pytestmark = pytest.mark.django_db


def test_csv_with_repeated_headers_is_refused_naming_them(northwind):
    header = ",".join([*COLUMNS, "NPI"])
    plan = plan_import(firm=northwind, text=f"{header}\nAna,Rivera,,1234567893,a@b.test,,,,,1\n")
    assert plan.rows == []
    assert "npi" in plan.error
    assert "more than once" in plan.error


@pytest.mark.parametrize(
    "email",
    [
        "ana@clinic\u200b.test",  # a zero-width space in the domain
        "ana\u200d@clinic.test",  # a zero-width joiner in the name
        "ana@[127.0.0.1]",  # an IP-literal domain
        "ana@[IPv6:::1]",
    ],
)
def test_emails_with_invisible_characters_or_ip_literal_domains_are_refused(
    as_user, northwind_staff, northwind, email
):
    with pytest.raises(ValidationError):
        validate_portal_email(email)
    response = as_user(northwind_staff).post(
        reverse("client_new"),
        {"first_name": "Ana", "last_name": "Rivera", "npi": "1234567893", "email": email},
    )
    assert response.status_code == 200
    assert not Client.objects.filter(firm=northwind).exists()


def test_an_oversized_form_post_gets_the_portals_error_page(as_user, northwind_staff, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = as_user(northwind_staff).post(
        reverse("client_new"), {f"field{i}": "x" for i in range(50)}
    )
    assert response.status_code == 400
    assert "credportal" in response.content.decode()
    assert "too large or not well formed" in response.content.decode()
