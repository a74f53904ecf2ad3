"""Issue 12, finding 8: an address the mail server refuses for good is marked bouncing until
someone corrects it, and the client's staff are told, in the portal, whose address it is and
on which client."""

import smtplib
from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib import admin
from django.core import mail
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from clients import services as client_services
from notifications import delivery
from notifications.models import BouncingAddress, Notification
from notifications.outbox import Message, schedule
from portal.models import AuditEvent, User

pytestmark = pytest.mark.django_db

NO_SUCH_USER = (550, b"5.1.1 no such user")


def email_to(firm, address, *, step="now", recipient=None):
    return Message(
        firm=firm,
        kind="test.reminder",
        subject_type="thing",
        subject_id="t-1",
        step=f"{step}-{address}",
        due_at=timezone.now(),
        template="notification",
        to_email=address,
        recipient=recipient,
        context={"subject": f"Reminder {step}", "headline": "Reminder", "lines": [], "name": "X"},
        channels=(Notification.Channel.EMAIL,),
    )


@pytest.fixture
def refusing(monkeypatch):
    """The mail server answers 550 to RCPT for the addresses in the returned set."""
    from django.core.mail.backends.locmem import EmailBackend

    refused: set[str] = set()
    real_send = EmailBackend.send_messages

    def send_messages(self, messages):
        for message in messages:
            if bounced := {to: NO_SUCH_USER for to in message.to if to in refused}:
                raise smtplib.SMTPRecipientsRefused(bounced)
        return real_send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_messages)
    return refused


def notices(**lookup):
    return Notification.objects.filter(kind="email.bouncing", channel="in_app", **lookup)


def test_a_bounce_marks_the_address_and_tells_the_assigned_staff_who_and_on_which_client(
    rivera, northwind, northwind_staff, northwind_admin, refusing
):
    refusing.add(rivera.email)
    schedule([email_to(northwind, rivera.email, recipient=rivera.user)])
    delivery.deliver_due()
    row = Notification.objects.get(channel="email")
    assert (row.state, row.attempts) == ("failed", 1)  # at once, not retried
    mark = BouncingAddress.objects.get()
    assert (mark.firm, mark.address, mark.notification) == (northwind, rivera.email, row)
    assert mark.reply == "550 5.1.1 no such user"
    # The assigned staff member, not the admins, in the portal (no email to a bouncing world).
    notice = notices().get()
    assert notice.recipient == northwind_staff
    assert notice.title == "Ana Rivera, LCSW: emails to the provider bounce"
    when = mark.since.astimezone(northwind.zone)
    assert f"The mail server refused rivera@clinic.test on {when:%B %-d at %-I:%M %p}" in (
        notice.body_text
    )
    assert "“550 5.1.1 no such user”" in notice.body_text
    assert notice.link_path == reverse("client_detail", args=[rivera.public_id])
    event = AuditEvent.objects.get(verb="email.marked_bouncing")
    assert (event.actor, event.firm, event.target_label) == (None, northwind, rivera.email)


def test_a_bounce_on_an_unassigned_client_tells_the_firm_admins(
    rivera, northwind, northwind_staff, northwind_admin, refusing
):
    client_services.client_update(client=rivera, actor=northwind_staff, assigned_staff=None)
    office = rivera.delegates.get()
    refusing.add(office.email)
    schedule([email_to(northwind, office.email, recipient=office.user)])
    delivery.deliver_due()
    notice = notices().get()
    assert notice.recipient == northwind_admin
    assert notice.title == "Ana Rivera, LCSW: emails to Olivia Office (delegate) bounce"


def test_an_address_that_bounces_again_is_marked_and_told_once(
    rivera, northwind, northwind_staff, refusing
):
    refusing.add(rivera.email)
    schedule([email_to(northwind, rivera.email, step="first")])
    delivery.deliver_due()
    schedule([email_to(northwind, rivera.email, step="second")])
    delivery.deliver_due()
    assert Notification.objects.filter(channel="email", state="failed").count() == 2
    first = Notification.objects.get(channel="email", step__startswith="first")
    assert BouncingAddress.objects.get().notification == first  # the first bounce, kept
    assert notices().count() == 1


def test_messages_to_a_bouncing_address_are_still_tried(rivera, northwind, refusing):
    """docs/decisions.md: a mark shows the problem, it does not hold the mail."""
    refusing.add(rivera.email)
    schedule([email_to(northwind, rivera.email, step="first")])
    delivery.deliver_due()
    refusing.clear()  # the provider's mailbox works again
    schedule([email_to(northwind, rivera.email, step="second")])
    assert delivery.deliver_due()["sent"] == 1
    assert [m.to for m in mail.outbox] == [[rivera.email]]


def test_correcting_the_address_takes_the_mark_off(rivera, northwind, northwind_staff, refusing):
    office = rivera.delegates.get()
    refusing.update({rivera.email, office.email})
    schedule([email_to(northwind, rivera.email), email_to(northwind, office.email)])
    delivery.deliver_due()
    assert BouncingAddress.objects.count() == 2
    client_services.client_update(client=rivera, actor=northwind_staff, phone="555-0100")
    assert BouncingAddress.objects.count() == 2  # another field: the address still bounces
    client_services.client_update(client=rivera, actor=northwind_staff, email="ana@clinic.test")
    # The PLLC's Authorized Official (the provider) still carries the old address, as it is
    # entered in PECOS: the mark stays until that record changes too.
    official = rivera.organizations.get().officials.get()
    assert official.email == "rivera@clinic.test"
    assert BouncingAddress.objects.count() == 2
    client_services.official_remove(official=official, actor=northwind_staff)
    assert list(BouncingAddress.objects.values_list("address", flat=True)) == [office.email]
    client_services.delegate_save(
        client=rivera,
        actor=northwind_staff,
        name=office.name,
        email="olivia@rivera.test",
        roles={},
        delegate=office,
    )
    assert not BouncingAddress.objects.exists()
    cleared = AuditEvent.objects.filter(verb="email.bounce_cleared").order_by("id")
    assert [(e.actor, e.target_label) for e in cleared] == [
        (northwind_staff, "rivera@clinic.test"),
        (northwind_staff, "office@rivera.test"),
    ]


def test_an_operator_correcting_a_members_address_takes_the_mark_off(
    northwind, northwind_staff, northwind_admin, operator, refusing
):
    """A member's address (a staff member's digest bounced): no client, so the admins hear
    of it; the operator corrects it in the admin."""
    refusing.add(northwind_staff.email)
    schedule([email_to(northwind, northwind_staff.email, recipient=northwind_staff)])
    delivery.deliver_due()
    notice = notices().get()
    assert notice.recipient == northwind_admin
    assert "staff@northwind.test" in notice.title
    assert "a member of Northwind Credentialing" in notice.body_text
    request = RequestFactory().post("/admin/")
    request.user = operator
    old = northwind_staff.email
    northwind_staff.email = "sam@northwind.test"
    admin.site.get_model_admin(User).save_model(
        request,
        northwind_staff,
        SimpleNamespace(changed_data=["email"], initial={"email": old}),
        change=True,
    )
    assert not BouncingAddress.objects.exists()


def test_telling_people_of_a_bounce_never_stops_delivery(
    rivera, northwind, northwind_admin, refusing, monkeypatch
):
    """A bug on the domain side: the message still fails at once, the mark stays, the admins
    still have the failed message's alert, and the rest of the batch goes out."""
    from workflows.notify import bounces

    def broken(mark, notification):
        raise RuntimeError("bug")

    monkeypatch.setattr(bounces, "address_bouncing", broken)
    refusing.add(rivera.email)
    schedule([email_to(northwind, rivera.email), email_to(northwind, "fine@clinic.test")])
    counts = delivery.deliver_due()
    assert counts["sent"] == 1
    assert Notification.objects.get(channel="email", to_email=rivera.email).state == "failed"
    assert BouncingAddress.objects.filter(address=rivera.email).exists()
    assert Notification.objects.filter(kind="delivery.failed", recipient=northwind_admin).exists()


def test_the_soft_time_limit_inside_a_bounce_receiver_is_not_swallowed(
    rivera, northwind, refusing, monkeypatch
):
    from workflows.notify import bounces

    def out_of_time(mark, notification):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(bounces, "address_bouncing", out_of_time)
    refusing.add(rivera.email)
    schedule([email_to(northwind, rivera.email)])
    with pytest.raises(SoftTimeLimitExceeded):
        delivery.deliver_due()


def test_the_client_page_says_email_bouncing_beside_the_address(
    as_user, rivera, northwind, northwind_staff, refusing
):
    office = rivera.delegates.get()
    refusing.add(office.email)
    schedule([email_to(northwind, office.email)])
    delivery.deliver_due()
    page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    text = page.content.decode()
    assert text.count("Email bouncing") == 1
    at = text.index(f"· {office.email} <span")
    assert "Email bouncing" in text[at : at + 300]
    assert "550 5.1.1 no such user" in text[at : at + 300]


@pytest.mark.parametrize(
    ("reply", "marked", "state", "attempts"),
    [
        ((550, b"5.1.1 no such user"), True, "failed", 1),
        ((550, b"no such user here"), True, "failed", 1),  # no enhanced code
        ((551, b"5.1.6 user has moved"), True, "failed", 1),
        ((550, b"5.2.1 mailbox disabled"), True, "failed", 1),
        # Our relay refuses us, not the recipient: every address would be marked.
        ((554, b"5.7.1 Relay access denied"), False, "scheduled", 0),
        ((550, b"5.7.1 Sender not authorized"), False, "scheduled", 0),
        # A full mailbox is temporary: retried, with its attempts counted.
        ((552, b"5.2.2 mailbox full"), False, "scheduled", 1),
    ],
)
def test_only_a_refusal_of_the_recipient_marks_the_address(
    rivera, northwind, monkeypatch, reply, marked, state, attempts
):
    """Review of issue 12's change: any 5xx to RCPT used to be a bounce, so a relay that
    refused us failed all the mail for good and marked every address."""
    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):
        raise smtplib.SMTPRecipientsRefused({rivera.email: reply})

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    schedule([email_to(northwind, rivera.email)])
    delivery.deliver_due()
    row = Notification.objects.get(channel="email")
    assert (row.state, row.attempts) == (state, attempts)
    assert BouncingAddress.objects.exists() == marked


@pytest.mark.parametrize(
    "refusal",
    [
        smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"),
        smtplib.SMTPSenderRefused(530, b"5.7.0 Authentication required", "portal@x.test"),
        smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."),
        smtplib.SMTPHeloError(501, b"bad HELO"),
    ],
)
def test_a_server_that_refuses_us_spends_no_attempt(northwind, monkeypatch, refusal):
    """A rotated SMTP password or a relay that wants TLS is the server's failure, not the
    message's: the mail waits for it (issue 12, finding 1) instead of failing after 6
    sweeps."""
    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):
        raise refusal

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    schedule([email_to(northwind, "doc@clinic.test")])
    delivery.deliver_due()
    row = Notification.objects.get(channel="email")
    assert (row.state, row.attempts) == ("scheduled", 0)
    assert not BouncingAddress.objects.exists()


def test_a_bounce_whose_mark_cannot_be_written_is_not_failed_without_it(
    rivera, northwind, refusing, monkeypatch
):
    """Review of issue 12's change: the row was failed before the mark was written, so a
    failure in between (the soft time limit, the database) left a failed message and no mark,
    for good. Now both are one transaction: the row comes back and the next sweep marks it."""
    from workflows.notify import bounces

    def out_of_time(mark, notification):
        raise SoftTimeLimitExceeded()

    refusing.add(rivera.email)
    schedule([email_to(northwind, rivera.email)])
    with monkeypatch.context() as late:
        late.setattr(bounces, "address_bouncing", out_of_time)
        with pytest.raises(SoftTimeLimitExceeded):
            delivery.deliver_due()
    row = Notification.objects.get(channel="email")
    assert row.state == "scheduled"
    assert not BouncingAddress.objects.exists()

    delivery.deliver_due()
    row.refresh_from_db()
    assert row.state == "failed"
    assert BouncingAddress.objects.get().notification == row
    assert notices().count() == 1
