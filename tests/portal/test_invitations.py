import re

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from portal import services
from portal.errors import DomainError
from portal.models import AuditEvent, Invitation, Membership, Role, User
from tests.portal.factories import InvitationFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def link_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/invitations/[^\s]+/)", message.body).group(1)


def invite(firm, admin, email="new@northwind.test", role=Role.STAFF):
    return services.invitation_create(firm=firm, email=email, role=role, invited_by=admin)


ACCEPT_FORM = {
    "full_name": "Nia Newcomer",
    "password1": "a-long-and-fresh-passphrase-7",
    "password2": "a-long-and-fresh-passphrase-7",
}


def test_admin_invites_staff_by_email(
    as_user, northwind_admin, northwind, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(northwind_admin).post(
            reverse("invite_member"), {"email": "New@Northwind.test", "role": "staff"}
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get(firm=northwind)
    assert invitation.email == "new@northwind.test"
    # Through the outbox: one email row, delivered.
    row = Notification.objects.get(kind="portal.invitation", subject_id=str(invitation.public_id))
    assert row.state == Notification.State.SENT
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@northwind.test"]
    assert "Northwind Credentialing" in mail.outbox[0].subject
    assert mail.outbox[0].alternatives, "HTML part expected"
    assert AuditEvent.objects.filter(verb="invitation.created", firm=northwind).exists()


def test_invitation_expires_after_the_firms_lifetime(
    northwind, northwind_admin, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = invite(northwind, northwind_admin)
    assert invitation.expires_at - invitation.created_at == timezone.timedelta(days=7)
    path = link_path(mail.outbox[0])
    with time_machine.travel(invitation.expires_at + timezone.timedelta(seconds=1)):
        response = client.post(path, ACCEPT_FORM)
    assert response.status_code == 400
    assert b"expired" in response.content
    assert not User.objects.filter(email="new@northwind.test").exists()


def test_accepting_creates_the_account_and_sends_staff_to_mfa_enrolment(
    northwind, northwind_admin, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(northwind, northwind_admin)
    path = link_path(mail.outbox[0])
    assert client.get(path).status_code == 200
    response = client.post(path, ACCEPT_FORM)
    assert response.status_code == 302
    user = User.objects.get(email="new@northwind.test")
    assert Membership.objects.get(user=user, firm=northwind).role == Role.STAFF
    # Logged in, but staff must enrol an authenticator before reaching any data.
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")
    assert AuditEvent.objects.filter(verb="invitation.accepted", actor=user).exists()


def test_accepted_invitation_cannot_be_reused(
    northwind, northwind_admin, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(northwind, northwind_admin)
    path = link_path(mail.outbox[0])
    client.post(path, ACCEPT_FORM)
    client.logout()
    response = client.post(path, {**ACCEPT_FORM, "full_name": "Someone Else"})
    assert response.status_code == 400
    assert b"already been used" in response.content
    assert User.objects.filter(email="new@northwind.test").count() == 1


def test_bad_accept_form_shows_errors_and_writes_nothing(
    northwind, northwind_admin, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(northwind, northwind_admin)
    path = link_path(mail.outbox[0])
    response = client.post(path, {**ACCEPT_FORM, "password2": "different-passphrase-8"})
    assert response.status_code == 200
    assert b"The two passwords differ." in response.content
    assert not User.objects.filter(email="new@northwind.test").exists()


def test_resend_replaces_the_link_and_restarts_the_clock(
    northwind, northwind_admin, as_user, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = invite(northwind, northwind_admin)
    old_path = link_path(mail.outbox[0])
    with time_machine.travel(timezone.now() + timezone.timedelta(days=6)):
        with django_capture_on_commit_callbacks(execute=True):
            as_user(northwind_admin).post(reverse("resend_invitation", args=[invitation.public_id]))
        new_path = link_path(mail.outbox[1])
        invitation.refresh_from_db()
        assert invitation.expires_at > timezone.now() + timezone.timedelta(days=6)
        assert new_path != old_path
        assert client.get(old_path).status_code == 400
        assert client.get(new_path).status_code == 200


def test_revoked_invitation_cannot_be_used(
    northwind, northwind_admin, as_user, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = invite(northwind, northwind_admin)
    path = link_path(mail.outbox[0])
    as_user(northwind_admin).post(reverse("revoke_invitation", args=[invitation.public_id]))
    response = client.post(path, ACCEPT_FORM)
    assert response.status_code == 400
    assert b"withdrawn" in response.content
    assert AuditEvent.objects.filter(verb="invitation.revoked").exists()


def test_revoking_twice_is_a_clear_message_not_an_error(northwind, northwind_admin, as_user):
    invitation = InvitationFactory(firm=northwind)
    client = as_user(northwind_admin)
    client.post(reverse("revoke_invitation", args=[invitation.public_id]))
    response = client.post(reverse("revoke_invitation", args=[invitation.public_id]), follow=True)
    assert response.status_code == 200
    assert b"already accepted or revoked" in response.content


def test_another_firms_admin_cannot_touch_an_invitation(northwind, bluebird_admin, as_user):
    invitation = InvitationFactory(firm=northwind)
    client = as_user(bluebird_admin)
    for name in ("resend_invitation", "revoke_invitation"):
        assert client.post(reverse(name, args=[invitation.public_id])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_invitation_from_another_firm_is_accepted_into_that_firm_only(
    bluebird, bluebird_admin, northwind_staff, as_user, django_capture_on_commit_callbacks
):
    """A Northwind staff member invited to Bluebird joins Bluebird with their same account."""
    with django_capture_on_commit_callbacks(execute=True):
        invite(bluebird, bluebird_admin, email=northwind_staff.email)
    path = link_path(mail.outbox[0])
    client = as_user(northwind_staff)
    assert client.post(path).status_code == 302
    assert Membership.objects.get(user=northwind_staff, firm=bluebird).role == Role.STAFF


def test_inviting_an_existing_member_is_refused(northwind, northwind_admin, northwind_staff):
    with pytest.raises(DomainError, match="already a member"):
        invite(northwind, northwind_admin, email=northwind_staff.email.upper())


def test_inviting_the_same_email_twice_resends_the_open_invitation(northwind, northwind_admin):
    first = invite(northwind, northwind_admin)
    second = invite(northwind, northwind_admin, email="NEW@northwind.test")
    assert first.pk == second.pk
    assert Invitation.objects.filter(firm=northwind).count() == 1


def test_tampered_link_is_refused(client, db):
    response = client.get(reverse("accept_invitation", args=["not-a-real-token"]))
    assert response.status_code == 400
    assert b"not valid" in response.content


def test_invalid_invite_form_shows_a_message(as_user, northwind_admin):
    response = as_user(northwind_admin).post(
        reverse("invite_member"), {"email": "not-an-email", "role": "staff"}, follow=True
    )
    assert b"Enter a valid email address." in response.content
    assert not Invitation.objects.exists()


def test_existing_account_must_log_in_to_accept(
    bluebird, bluebird_admin, northwind_staff, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(bluebird, bluebird_admin, email=northwind_staff.email)
    path = link_path(mail.outbox[0])
    response = client.post(path)
    assert response.status_code == 200
    assert b"Log in" in response.content
    assert not Membership.objects.filter(user=northwind_staff, firm=bluebird).exists()


def test_wrong_account_cannot_accept_someone_elses_invitation(
    bluebird,
    bluebird_admin,
    northwind_staff,
    northwind_admin,
    as_user,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(bluebird, bluebird_admin, email=northwind_staff.email)
    path = link_path(mail.outbox[0])
    response = as_user(northwind_admin).post(path)
    assert response.status_code == 400
    assert b"another email address" in response.content
    assert not Membership.objects.filter(firm=bluebird, user=northwind_admin).exists()


def test_create_firm_command_invites_the_first_admin(db, django_capture_on_commit_callbacks):
    from django.core.management import call_command

    with django_capture_on_commit_callbacks(execute=True):
        call_command("create_firm", "Acme Credentialing", "--admin-email", "boss@acme.test")
    invitation = Invitation.objects.get(email="boss@acme.test")
    assert invitation.role == Role.ADMIN
    assert invitation.firm.slug == "acme-credentialing"
    assert mail.outbox[0].to == ["boss@acme.test"]


def test_create_firm_twice_is_a_clear_error(db):
    from django.core.management import CommandError, call_command

    call_command("create_firm", "Acme Credentialing", "--admin-email", "boss@acme.test")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_firm", "Acme Credentialing", "--admin-email", "boss@acme.test")


def test_new_firm_admin_lands_on_the_firms_dashboard_after_enrolling(
    db, client, django_capture_on_commit_callbacks
):
    """Operator creates a firm; its admin accepts, enrols TOTP and sees the empty dashboard."""
    from allauth.mfa.totp.internal.auth import TOTP

    with django_capture_on_commit_callbacks(execute=True):
        services.firm_create(name="Acme Credentialing", admin_email="boss@acme.test")
    client.post(link_path(mail.outbox[0]), ACCEPT_FORM)
    user = User.objects.get(email="boss@acme.test")
    TOTP.activate(user, "JBSWY3DPEHPK3PXP")
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert b"Acme Credentialing" in response.content
    assert b"No clients yet" in response.content
    MembershipFactory  # factories stay importable for the matrix  # noqa: B018


def test_broker_outage_delays_the_invitation_but_never_loses_it(
    as_user, northwind, northwind_admin, django_capture_on_commit_callbacks, monkeypatch
):
    from notifications import tasks

    def broker_down(**kwargs):
        raise ConnectionError("broker unavailable")

    monkeypatch.setattr(tasks.deliver_due, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(northwind_admin).post(
            reverse("invite_member"), {"email": "late@northwind.test", "role": "staff"}
        )
    assert response.status_code == 302  # the admin sees success, not an error page
    row = Notification.objects.get(kind="portal.invitation")
    assert row.state == Notification.State.SCHEDULED
    assert mail.outbox == []
    tasks.deliver_due()  # the minute sweep
    tasks.deliver_due()
    assert [m.to for m in mail.outbox] == [["late@northwind.test"]]


def test_the_same_delivery_twice_sends_the_invitation_once(
    northwind, northwind_admin, django_capture_on_commit_callbacks
):
    from notifications import tasks

    with django_capture_on_commit_callbacks(execute=True):
        invite(northwind, northwind_admin)
    tasks.deliver_due()
    assert len(mail.outbox) == 1


def test_a_resent_link_replaces_the_unsent_email_of_the_old_one(
    northwind, northwind_admin, monkeypatch
):
    """A worker killed before sending, or a broker away: the old link's email is still
    waiting when the link is resent; only the new link goes out (the old one no longer
    works), and a revoked invitation sends nothing."""
    from notifications import tasks

    monkeypatch.setattr(tasks.deliver_due, "delay", lambda **kwargs: None)
    invitation = invite(northwind, northwind_admin)
    later = timezone.now() + timezone.timedelta(seconds=5)
    with time_machine.travel(later):
        services.invitation_resend(invitation=invitation, actor=northwind_admin)
    invitation.refresh_from_db()
    with time_machine.travel(later + timezone.timedelta(seconds=5)):
        tasks.deliver_due()
    assert len(mail.outbox) == 1
    token = re.search(r"/invitations/([^/\s]+)/", mail.outbox[0].body).group(1)
    assert services.invitation_from_token(token) == invitation  # the newest link
    other = services.invitation_create(
        firm=northwind, email="gone@northwind.test", role=Role.STAFF, invited_by=northwind_admin
    )
    services.invitation_revoke(invitation=other, actor=northwind_admin)
    with time_machine.travel(later + timezone.timedelta(seconds=10)):
        tasks.deliver_due()
    assert [m.to for m in mail.outbox] == [["new@northwind.test"]]


def test_an_invitation_claimed_by_a_worker_that_died_is_sent_later(
    northwind, northwind_admin, monkeypatch
):
    """Issue 12, finding 2: the old task marked the invitation sent before sending, so a
    worker killed in between (SIGKILL, the OOM killer, the hard time limit) lost it for
    good. Through the outbox, a claim whose worker died lapses and the sweep sends it."""
    from notifications import tasks
    from notifications.delivery import claim_batch, claim_timeout

    monkeypatch.setattr(tasks.deliver_due, "delay", lambda **kwargs: None)
    invitation = invite(northwind, northwind_admin)
    _token, claimed = claim_batch(10)  # a worker takes the row... and is killed
    assert len(claimed) == 1
    tasks.deliver_due()
    assert mail.outbox == []  # still held by the dead worker's claim
    with time_machine.travel(timezone.now() + claim_timeout() + timezone.timedelta(seconds=1)):
        tasks.deliver_due()
    assert [m.to for m in mail.outbox] == [[invitation.email]]
