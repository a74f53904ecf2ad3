"""allauth's emails through the outbox (issue 12, finding 2): every one of its templates,
rendered by the outbox as the person's firm's email, reads right."""

from datetime import datetime
from pathlib import Path

import allauth
import pytest
from allauth.account.adapter import get_adapter
from allauth.core.context import request_context
from django.test import RequestFactory

from notifications.models import Notification
from portal.models import Role
from tests.portal.factories import MembershipFactory
from tests.workflows.test_every_message import LINK, PLACEHOLDER

pytestmark = pytest.mark.django_db

ALLAUTH_TEMPLATES = Path(allauth.__file__).parent / "templates"
PREFIXES = sorted(
    str(path.relative_to(ALLAUTH_TEMPLATES)).removesuffix("_subject.txt")
    for folder in ("account/email", "mfa/email")
    for path in (ALLAUTH_TEMPLATES / folder).glob("*_subject.txt")
)
CONTEXT = {
    "code": "483920",
    "password_reset_url": "https://portal.test/accounts/password/reset/key/3-abc/",
    "activate_url": "https://portal.test/accounts/confirm-email/xyz/",
    "key": "xyz",
    "signup_url": "https://portal.test/accounts/signup/",
    "from_email": "old@clinic.test",
    "to_email": "new@clinic.test",
    "deleted_email": "old@clinic.test",
    "timestamp": datetime(2026, 3, 2, 15, 30),
    "ip": "203.0.113.9",
    "user_agent": "Mozilla/5.0",
}


def test_every_allauth_email_goes_through_the_outbox_and_reads_right(northwind):
    assert "account/email/login_code" in PREFIXES
    assert "account/email/password_reset_key" in PREFIXES
    northwind.contact_email = "help@northwind.test"
    northwind.save(update_fields=["contact_email"])
    person = MembershipFactory(firm=northwind, role=Role.CLIENT, user__totp=False).user
    request = RequestFactory().get("/accounts/login/code/")
    with request_context(request):
        for prefix in PREFIXES:
            get_adapter(request).send_mail(prefix, person.email, {**CONTEXT, "user": person})

    rows = {row.kind: row for row in Notification.objects.filter(recipient=person)}
    assert sorted(rows) == sorted("account." + prefix.rsplit("/", 1)[-1] for prefix in PREFIXES)
    for kind, row in rows.items():
        texts = [row.title, row.body_text, row.body_html]
        assert (row.firm, row.to_email, row.channel) == (northwind, person.email, "email"), kind
        assert row.title.startswith("Northwind Credentialing: "), (kind, row.title)
        for text in texts:
            assert not PLACEHOLDER.findall(text), (kind, text)
            for leftover in ("{{", "{%", "[credportal]", "example.com"):
                assert leftover not in text, (kind, leftover, text)
        # The frame is the firm's, not allauth's "Hello from example.com!".
        assert row.body_text.startswith("Hello,"), (kind, row.body_text)
        assert row.body_text.rstrip().endswith("Questions: help@northwind.test"), kind
        # Every link of the text is a link in the HTML part.
        for link in LINK.findall(row.body_text):
            assert f'href="{link}"' in row.body_html, (kind, link)
    assert "483920" in rows["account.login_code"].body_text
    assert CONTEXT["password_reset_url"] in rows["account.password_reset_key"].body_text


def test_the_login_code_and_reset_emails_speak_like_their_pages(northwind):
    """The pages say "login code" and "choose a new password"; allauth's stock emails said
    "Sign-In Code", "Please enter it in your open browser window", "Password Reset Email"."""
    from django.template.loader import render_to_string

    for prefix in ("account/email/login_code", "account/email/password_reset_key"):
        text = render_to_string(f"{prefix}_subject.txt", CONTEXT) + render_to_string(
            f"{prefix}_message.txt", CONTEXT
        )
        for stock in ("Sign-In", "sign-in", "Please enter", "Password Reset Email"):
            assert stock not in text, (prefix, stock)
    assert render_to_string("account/email/login_code_subject.txt", CONTEXT).strip() == (
        "Your login code: 483920"
    )
