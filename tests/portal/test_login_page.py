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


# allauth's own words that must not reach a credportal user.
STOCK_WORDS = (
    "Sign In",
    "sign-in",
    "Sign Up",
    "sign up",
    "Remember Me",
    "Request Code",
    "Bad Token",
    "Two-Factor Authentication",
    "Please enter",
    "expires shortly",
)


def assert_plain(page: str) -> None:
    found = [words for words in STOCK_WORDS if words in page]
    assert not found, f"stock allauth words on the page: {found}"


def test_the_code_and_password_pages_speak_credportals_language(provider):
    browser = Browser()
    request_code = browser.get(reverse("account_request_login_code")).content.decode()
    assert_plain(request_code)
    assert "Email me a code" in request_code

    browser.post(reverse("account_request_login_code"), {"email": provider.email})
    confirm = browser.get(reverse("account_confirm_login_code")).content.decode()
    assert_plain(confirm)
    assert f"We emailed a six-digit code to <strong>{provider.email}</strong>" in confirm
    # Easy to type on a phone: the digits keypad, and the code offered from the email.
    assert 'inputmode="numeric"' in confirm
    assert 'autocomplete="one-time-code"' in confirm
    wrong = browser.post(reverse("account_confirm_login_code"), {"code": "000000"})
    assert wrong.status_code == 200
    assert 'aria-invalid="true"' in wrong.content.decode()

    reset = Browser().get(reverse("account_reset_password")).content.decode()
    assert_plain(reset)
    assert "Email me a link" in reset
    done = Browser().post(reverse("account_reset_password"), {"email": provider.email}, follow=True)
    assert_plain(done.content.decode())
    assert "Check your email" in done.content.decode()

    bad_key = Browser().get(
        reverse("account_reset_password_from_key", kwargs={"uidb36": "1", "key": "junk"}),
        follow=True,
    )
    assert_plain(bad_key.content.decode())
    assert "This link no longer works" in bad_key.content.decode()
    assert "Email me a new link" in bad_key.content.decode()

    signup = Browser().get(reverse("account_signup")).content.decode()
    assert_plain(signup)


def test_the_second_factor_page_speaks_credportals_language(northwind_staff):
    from tests.portal.factories import PASSWORD

    browser = Browser()
    response = browser.post(
        reverse("account_login"),
        {"login": northwind_staff.email, "password": PASSWORD},
        follow=True,
    )
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("mfa_authenticate")
    assert_plain(page)
    assert "Enter your authenticator code" in page
    assert "recovery codes" in page
    assert "Cancel and log out" in page
