import pytest
from django.core.management import call_command

from portal import audit
from portal.models import AuditEvent, Firm, Membership, User

pytestmark = pytest.mark.django_db


def test_audit_events_are_append_only(northwind, northwind_admin):
    event = audit.record("test.happened", actor=northwind_admin, firm=northwind)
    event.verb = "test.rewritten"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(verb="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).verb == "test.happened"


def test_system_events_have_no_actor(northwind):
    event = audit.record("system.did", actor=None, firm=northwind)
    assert event.actor is None
    assert event.actor_label == "System"


def test_seed_demo_is_idempotent():
    def snapshot():
        return (
            list(Firm.objects.values_list("slug", "name").order_by("slug")),
            list(User.objects.values_list("email", "password").order_by("email")),
            list(
                Membership.objects.values_list("user__email", "firm__slug", "role").order_by("pk")
            ),
        )

    call_command("seed_demo")
    first = snapshot()
    call_command("seed_demo")
    assert snapshot() == first
    assert {slug for slug, _ in first[0]} == {"northwind", "bluebird"}
    assert User.objects.get(email="admin@northwind.example").check_password("demo-pass-2026!")


def test_demo_staff_log_in_to_real_work_and_a_few_unread_notifications(client):
    """The published TOTP secret works; the caseload has rows; and (issue 13) the inbox
    is not 46 unread at once: what came before the last two days was read back then, and of
    the last two days' the newest few (at most five) wait, for everyone in the demo."""
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    from notifications.selectors import inbox_for
    from tests.conftest import totp_code

    call_command("seed_demo")
    client.post(
        reverse("account_login"),
        {"login": "staff@northwind.example", "password": "demo-pass-2026!"},
    )
    client.post(reverse("mfa_authenticate"), {"code": totp_code("JBSWY3DPEHPK3PXP")})
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Northwind Credentialing" in page
    assert "No clients yet" not in page
    assert "Ana Rivera, LCSW" in page

    staff = User.objects.get(email="staff@northwind.example")
    unread = inbox_for(staff).filter(read_at__isnull=True)
    assert inbox_for(staff).count() > 20  # the history is there, read
    assert 1 <= unread.count() <= 5
    assert f'{unread.count()}<span class="visually-hidden"> unread' in page
    for person in User.objects.filter(notifications__channel="in_app").distinct():
        unread = inbox_for(person).filter(read_at__isnull=True)
        assert unread.count() <= 5, person.email
        assert not unread.filter(due_at__lt=timezone.now() - timedelta(days=2, minutes=5)).exists()


def test_the_demo_shows_the_cms_rules_at_work():
    """Issue 10's "done means": an upload round at day 18 of 20, a denial inside its
    reconsideration window, a development request the provider must answer in 6 days, a
    reassignment round waiting on a group's Delegated Official, a surrogate to-do that names
    the firm as registered in I&A."""
    from django.utils import timezone

    from workflows.deadlines import days_left
    from workflows.models import DevelopmentRequest, Enrollment, SignatureRound

    call_command("seed_demo")
    now = timezone.now()
    upload = SignatureRound.objects.get(
        enrollment__profile__client__last_name="Okafor", enrollment__kind="revalidation"
    )
    assert upload.method == "upload"
    assert days_left(upload.firm, upload.deadline, now) == 2
    denied = Enrollment.objects.get(profile__client__last_name="Lindqvist", state="denied")
    assert denied.reconsideration == "open"
    assert days_left(denied.firm, denied.reconsideration_deadline, now) == 40
    request = DevelopmentRequest.objects.get(
        enrollment__profile__client__last_name="Rivera", state="open", holder="provider"
    )
    assert days_left(request.firm, request.deadline, now) == 6
    reassignment = SignatureRound.objects.get(
        enrollment__profile__client__last_name="Okafor", enrollment__kind="reassignment"
    )
    from clients.models import Client
    from workflows.casefile import client_file
    from workflows.models import AccessGrant
    from workflows.todos import todos_for

    surrogate = AccessGrant.objects.get(method="add_surrogate", profile__client__last_name="Okafor")
    todos = todos_for(client_file(Client.objects.get(pk=surrogate.profile.client_id)), None)
    steps = next(t.steps for t in todos if t.grant == surrogate)
    assert any("Northwind Credentialing Services LLC" in step for step in steps)
    assert sorted(reassignment.signers.values_list("role", "state")) == [
        ("delegated_official", "awaiting"),
        ("provider", "signed"),
    ]


def test_the_demo_providers_newest_email_opens_her_to_do_in_one_tap():
    """Issue 13: after `make run`, the newest email to rivera@clinic.example in var/mail/
    opens her to-do list with one tap, no password typed (she has no second factor)."""
    import re

    from django.contrib.auth import get_user
    from django.core import mail
    from django.test import Client as Browser
    from django.urls import reverse

    from notifications import tasks

    call_command("seed_demo")
    tasks.deliver_due()  # what the worker does when `make run` starts
    to_rivera = [m for m in mail.outbox if m.to == ["rivera@clinic.example"]]
    assert len(to_rivera) == 1  # her newest, not her whole history
    link = re.search(r"https?://[^/\s]+(/go/[^/\s]+/)", to_rivera[0].body).group(1)
    browser = Browser()
    assert b"Open my to-do list" in browser.get(link).content
    tapped = browser.post(link)  # the one tap
    assert tapped.url == reverse("dashboard")
    assert get_user(browser).email == "rivera@clinic.example"
    assert "Your to-dos" in browser.get(tapped.url).content.decode()


def test_the_demo_seed_asks_for_delivery_once(django_capture_on_commit_callbacks, monkeypatch):
    """`make run` used to start with hundreds of queued delivery runs (one per seeded
    transaction with an email due), drained two a second for minutes, each finding nothing."""
    from notifications import outbox

    requests = []
    monkeypatch.setattr(outbox, "request_delivery", lambda: requests.append(1))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")
    assert requests == [1]
