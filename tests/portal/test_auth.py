import re
import smtplib

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client
from django.urls import reverse

from notifications.models import Notification
from portal.models import AuditEvent, Role
from tests.conftest import totp_code
from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db


def log_in(client, email, password=PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def test_staff_login_needs_password_and_totp(client, northwind_staff):
    response = log_in(client, northwind_staff.email)
    assert response.status_code == 302
    assert response.url == reverse("mfa_authenticate")
    # Password alone is not a session: data stays out of reach.
    assert client.get(reverse("dashboard")).status_code == 302
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code()})
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200
    assert AuditEvent.objects.filter(verb="auth.login", actor=northwind_staff).exists()


def test_wrong_totp_code_is_refused(client, northwind_staff):
    log_in(client, northwind_staff.email)
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200
    assert client.get(reverse("dashboard")).status_code == 302


def test_staff_without_authenticator_is_sent_to_enrol(client, northwind):
    member = MembershipFactory(firm=northwind, role=Role.STAFF, user__totp=False)
    log_in(client, member.user.email)
    for name in ("dashboard", "team"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response.url == reverse("mfa_activate_totp")
    assert client.get(reverse("mfa_activate_totp")).status_code == 200


def test_enrolling_totp_opens_the_dashboard(client, northwind):
    member = MembershipFactory(firm=northwind, role=Role.STAFF, user__totp=False)
    log_in(client, member.user.email)
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_failed_login_is_audited_without_logging_the_password(client, northwind_staff):
    log_in(client, northwind_staff.email, "wrong-password")
    event = AuditEvent.objects.get(verb="auth.login_failed")
    assert event.target_label == northwind_staff.email
    assert event.ip == "127.0.0.1"
    assert "wrong-password" not in str(event.data)


def test_login_attempts_are_rate_limited(client, northwind_staff):
    for _ in range(5):
        log_in(client, northwind_staff.email, "wrong-password")
    response = log_in(client, northwind_staff.email)  # right password, too late
    assert response.status_code == 429 or b"Too many failed login attempts" in response.content
    assert client.get(reverse("dashboard")).status_code == 302


def account_email_rows(kind: str):
    return list(Notification.objects.filter(kind=kind, channel=Notification.Channel.EMAIL))


def test_password_reset_by_email(client, northwind_staff, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": northwind_staff.email})
    assert len(mail.outbox) == 1
    # Through the outbox, as Northwind's email: stored, delivered once, recorded sent.
    [row] = account_email_rows("account.password_reset_key")
    assert (row.firm.slug, row.recipient, row.state) == ("northwind", northwind_staff, "sent")
    assert mail.outbox[0].extra_headers["Message-ID"] == row.message_id
    assert mail.outbox[0].subject == "Northwind Credentialing: Choose a new password"
    assert mail.outbox[0].from_email.startswith("Northwind Credentialing via credportal <")
    path = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mail.outbox[0].body)
    response = client.get(path.group(1), follow=True)
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else path.group(1)
    new = "a-brand-new-passphrase-42"
    response = client.post(form_url, {"password1": new, "password2": new})
    assert response.status_code == 302
    response = log_in(client, northwind_staff.email, new)
    assert response.url == reverse("mfa_authenticate")


def test_password_reset_does_not_reveal_unknown_addresses(
    client, northwind_staff, django_capture_on_commit_callbacks
):
    pages = []
    for email in ("nobody@nowhere.test", northwind_staff.email):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("account_reset_password"), {"email": email})
        pages.append((response.status_code, response.url))
    assert pages[0] == pages[1]  # the same answer for an address with no account
    # No "no account here, sign up" email either (ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS is off:
    # accounts come from invitations); the known address got its link.
    assert [m.to for m in mail.outbox] == [[northwind_staff.email]]


def test_no_sign_in_code_is_mailed_to_an_address_without_an_account(
    client, db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("account_request_login_code"), {"email": "nobody@nowhere.test"}
        )
    assert response.status_code == 302  # on to "enter the code", as for a real account
    assert mail.outbox == []
    assert callbacks == []
    assert not Notification.objects.exists()


def test_provider_logs_in_with_an_emailed_code(
    client, northwind, django_capture_on_commit_callbacks
):
    provider = MembershipFactory(firm=northwind, role=Role.CLIENT, user__totp=False).user
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(reverse("account_request_login_code"), {"email": provider.email})
    # Through the outbox, delivery requested the moment its row committed (a code is
    # time-critical: it does not wait for the minute sweep).
    assert [callback.__name__ for callback in callbacks] == ["request_delivery"]
    [row] = account_email_rows("account.login_code")
    assert (row.firm, row.recipient, row.state, row.essential) == (
        northwind,
        provider,
        "sent",
        True,
    )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].extra_headers["Message-ID"] == row.message_id
    # Issue 13: branded with the firm's name, and a code of digits only (a phone's keypad).
    assert mail.outbox[0].subject.startswith("Northwind Credentialing: ")
    assert "[credportal]" not in mail.outbox[0].subject
    code = re.search(r"\b(\d{6})\b", mail.outbox[0].body).group(1)
    response = client.post(reverse("account_confirm_login_code"), {"code": code})
    assert response.status_code == 302
    # Providers are not forced to enrol MFA.
    assert client.get(reverse("dashboard")).status_code == 200


def test_a_member_of_two_firms_gets_account_emails_from_the_firm_they_joined_first(
    client, northwind, bluebird, django_capture_on_commit_callbacks
):
    member = MembershipFactory(firm=bluebird, role=Role.CLIENT, user__totp=False).user
    MembershipFactory(firm=northwind, role=Role.CLIENT, user=member)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_request_login_code"), {"email": member.email})
    [row] = account_email_rows("account.login_code")
    assert row.firm == bluebird
    assert mail.outbox[0].subject.startswith("Bluebird Credentialing: ")


def test_an_operator_in_no_firm_gets_the_reset_email_from_the_request(client, operator):
    """No firm, no outbox row (a row belongs to a firm): sent as allauth sends it."""
    client.post(reverse("account_reset_password"), {"email": operator.email})
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "credportal: Choose a new password"
    assert "/accounts/password/reset/key/" in mail.outbox[0].body
    assert not Notification.objects.exists()


def test_a_mail_server_failure_on_an_operator_email_is_logged_not_a_500(
    client, operator, settings, caplog
):
    settings.MAILERS = {"default": {"BACKEND": "tests.portal.test_auth.RefusingBackend"}}
    settings.DEBUG = False
    response = Client(raise_request_exception=False).post(
        reverse("account_reset_password"), {"email": operator.email}
    )
    assert response.status_code == 302
    assert "account email account/email/password_reset_key not sent" in caplog.text
    assert operator.email not in caplog.text


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def test_there_is_no_open_signup(client, db):
    response = client.get(reverse("account_signup"))
    assert b"Accounts come from an invitation" in response.content
    client.post(
        reverse("account_signup"),
        {"email": "x@y.test", "password1": "some-long-pass-1", "password2": "some-long-pass-1"},
    )
    from portal.models import User

    assert not User.objects.filter(email="x@y.test").exists()


def test_admin_login_goes_through_allauth(client, db):
    response = client.get("/admin/login/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_firm_member_cannot_use_the_django_admin(as_user, northwind_admin):
    response = as_user(northwind_admin).get("/admin/")
    assert response.status_code in (302, 403)
    assert b"Site administration" not in response.content


def test_operator_reaches_the_django_admin_after_mfa(as_user, operator):
    response = as_user(operator).get("/admin/")
    assert response.status_code == 200


def test_operator_without_mfa_is_sent_to_enrol(as_user, db):
    from tests.portal.factories import UserFactory

    op = UserFactory(is_staff=True, is_superuser=True, totp=False)
    response = as_user(op).get("/admin/")
    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")


def test_csrf_failure_page_is_readable(db, northwind_admin):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(northwind_admin)
    response = client.post(reverse("invite_member"), {"email": "a@b.test", "role": "staff"})
    assert response.status_code == 403
    assert b"Your form expired" in response.content


def test_404_page_is_readable(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"We can" in response.content


def test_security_headers(client, db):
    response = client.get(reverse("account_login"))
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_an_old_provider_session_cannot_enrol_a_first_totp_without_reauthentication(
    client, provider
):
    """Finding 12: a stolen session must not be able to add a second factor (and lock the
    owner out). Right after logging in, enrolment needs no second password prompt; later,
    it asks for reauthentication first."""
    import time_machine
    from django.utils import timezone

    client.force_login(provider)
    assert client.get(reverse("mfa_activate_totp")).status_code == 200
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=30)):
        response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302
    assert "reauthenticate" in response.url
