"""The login page speaks credportal's language (issue 13): no sign-up (accounts come from
invitations), no stock "Remember Me:", a code by email offered; a wrong password says so."""

import pytest
from django.test import Client as Browser
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_login_page_offers_no_sign_up_and_reads_plainly():
    page = Browser().get(reverse("account_login")).content.decode()
    assert "sign up" not in page.lower()
    assert "Remember Me" not in page
    assert "Keep me logged in on this device" in page
    assert "Email me a login code" in page
    assert 'autocomplete="current-password"' in page


def test_a_wrong_password_is_said_and_the_email_is_kept(northwind_staff):
    response = Browser().post(
        reverse("account_login"), {"login": northwind_staff.email, "password": "wrong"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "not correct" in page
    assert f'value="{northwind_staff.email}"' in page


def test_the_role_badge_says_provider_or_whose_office(as_user, rivera, provider, delegate):
    assert (
        '<span class="who-role">Provider</span>'
        in as_user(provider).get(reverse("dashboard")).content.decode()
    )
    page = as_user(delegate).get(reverse("dashboard")).content.decode()
    assert '<span class="who-role">Office (for Ana Rivera)</span>' in page
