"""One tap from the email to the to-do (issue 13): the sign-in link in every email to a
provider or delegate. Single use, 24 hours after sending, bound to its recipient, a second
factor still asked for; a used or expired link offers a fresh one by email."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user
from django.core import mail
from django.test import Client as Browser
from django.urls import reverse
from django.utils import timezone

from notifications import tasks
from notifications.models import Notification, SignInLink
from workflows import services

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^/\s]+(/go/[^/\s]+/)")


@pytest.fixture
def grant(rivera, northwind_staff):
    return services.grant_create(
        profile=rivera.profiles.get(kind="individual"),
        method="connection_request",
        actor=northwind_staff,
    )


def link_in_email(to: str) -> str:
    tasks.deliver_due()
    message = next(m for m in reversed(mail.outbox) if m.to == [to])
    return LINK.search(message.body).group(1)


def test_the_email_opens_the_to_do_in_one_tap_without_a_password(rivera, grant):
    path = link_in_email(rivera.email)
    browser = Browser()
    page = browser.get(path)  # a mail scanner following the link uses nothing
    assert page.status_code == 200
    assert b"Open my to-do list" in page.content
    assert not SignInLink.objects.filter(used_at__isnull=False).exists()
    response = browser.post(path)
    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    assert get_user(browser).pk == rivera.user.pk
    assert "Approve the pending connection" in browser.get(response.url).content.decode()


def test_a_link_works_once_and_then_offers_a_fresh_one(rivera, grant):
    path = link_in_email(rivera.email)
    Browser().post(path)
    again = Browser().post(path)
    assert again.status_code == 410
    assert b"already used" in again.content
    assert b"Email me a fresh link" in again.content
    sent_before = len(mail.outbox)
    token = path.strip("/").split("/")[-1]
    Browser().post(reverse("sign_in_link_fresh", args=[token]))
    Browser().post(reverse("sign_in_link_fresh", args=[token]))  # at most one in 5 minutes
    fresh = link_in_email(rivera.email)
    assert len(mail.outbox) == sent_before + 1
    assert fresh != path
    browser = Browser()
    assert browser.post(fresh).status_code == 302
    assert get_user(browser).pk == rivera.user.pk


def test_a_link_expires_24_hours_after_the_email_went_out(rivera, grant):
    path = link_in_email(rivera.email)
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        response = Browser().post(path)
    assert response.status_code == 410
    assert b"expired" in response.content
    assert not SignInLink.objects.filter(used_at__isnull=False).exists()


def test_a_link_not_yet_sent_does_not_sign_in(rivera, grant, monkeypatch):
    """The row exists from scheduling; the link counts only once its email went out."""
    Notification.objects.filter(channel="email").update(state=Notification.State.SCHEDULED)
    link = SignInLink.objects.filter(user=rivera.user).first()
    assert link is not None
    row = Notification.objects.get(idempotency_key=link.idempotency_key)
    path = LINK.search(row.body_text).group(1)
    assert Browser().post(path).status_code == 410


def test_a_link_is_bound_to_its_recipient(as_user, rivera, grant, delegate):
    path = link_in_email(rivera.email)
    browser = as_user(delegate)
    response = browser.post(path)
    assert response.status_code == 403
    assert b"Log out first" in response.content
    assert get_user(browser).pk == delegate.pk
    assert not SignInLink.objects.filter(used_at__isnull=False).exists()


def test_a_second_factor_is_still_asked_for(rivera, grant):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    from tests.portal.factories import UserFactory  # noqa: F401  (factory sets TOTP up)

    TOTP.activate(rivera.user, "JBSWY3DPEHPK3PXP")
    assert Authenticator.objects.filter(user=rivera.user).exists()
    path = link_in_email(rivera.email)
    browser = Browser()
    response = browser.post(path)
    assert response.status_code == 302
    assert "/2fa/" in response.url
    assert not get_user(browser).is_authenticated


def test_staff_emails_carry_no_sign_in_link(rivera, grant, northwind_staff):
    tasks.deliver_due()
    staff = Notification.objects.filter(channel="email", to_email=northwind_staff.email)
    assert all("/go/" not in row.body_text for row in staff)
    assert not SignInLink.objects.filter(user=northwind_staff).exists()


def test_a_junk_token_says_so_and_sends_nothing(rivera):
    response = Browser().post("/go/not-a-token/")
    assert response.status_code == 410
    assert b"not valid" in response.content
    assert b"Email me a fresh link" not in response.content
    before = len(mail.outbox)
    response = Browser().post(reverse("sign_in_link_fresh", args=["not-a-token"]))
    assert b"Check your email" in response.content
    tasks.deliver_due()
    assert len(mail.outbox) == before
