"""The invitation email goes through the outbox, the real broker and a real worker to a real
SMTP server.

Everything else in the suite runs tasks eagerly; this test publishes for real (on commit),
a `celery worker` subprocess picks the delivery task up from the configured broker, claims
the outbox row in the test database and delivers it over SMTP to the sink, exactly once.
"""

import re
import time

import pytest

from notifications.models import Notification
from portal import services
from portal.celery import app as celery_app
from portal.models import Role

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DELIVERY_TIMEOUT = 30.0
GRACE_PERIOD = 2.0
TASK_LOG = r"Task notifications\.tasks\.deliver_due\[[0-9a-f-]+\] {event}"


@pytest.fixture
def publish_to_broker(settings):
    """Turn eager mode off for this process, so `.delay()` publishes to the broker."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = previous


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def test_invitation_email_is_delivered_once_by_a_real_worker(
    celery_worker_process, smtp_sink, publish_to_broker, mailoutbox, northwind, northwind_admin
):
    # invitation_create is atomic and the test transactional: when it returns, the row is
    # committed and its on_commit hook has published the task to the broker.
    invitation = services.invitation_create(
        firm=northwind, email="new@northwind.test", role=Role.STAFF, invited_by=northwind_admin
    )

    messages = smtp_sink.wait_for(1, timeout=DELIVERY_TIMEOUT)
    assert len(messages) == 1, smtp_sink.message_ids()
    message = messages[0]
    assert message["To"].addresses[0].addr_spec == "new@northwind.test"
    assert [envelope.rcpt_tos for envelope in smtp_sink.envelopes] == [("new@northwind.test",)]
    assert "Northwind Credentialing" in message["Subject"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "/invitations/" in body
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "/invitations/" in html

    assert wait_until(
        lambda: Notification.objects.filter(
            subject_id=str(invitation.public_id), state=Notification.State.SENT
        ).exists(),
        timeout=DELIVERY_TIMEOUT,
    ), "the worker sent the email but did not record it sent"

    # Exactly once: no second email, the worker received and ran the task once (no retry, no
    # redelivery), and nothing ran eagerly in this process (its mail backend is locmem).
    smtp_sink.assert_no_more_than(1, within=GRACE_PERIOD)
    celery_worker_process.wait_for_log(TASK_LOG.format(event="succeeded"), timeout=5)
    log = celery_worker_process.log()
    assert len(re.findall(TASK_LOG.format(event="received"), log)) == 1, log
    assert len(re.findall(TASK_LOG.format(event="succeeded"), log)) == 1, log
    assert len(smtp_sink.message_ids()) == 1
    assert mailoutbox == []


def test_a_sign_in_code_arrives_through_the_outbox_from_a_real_worker(
    celery_worker_process, smtp_sink, publish_to_broker, mailoutbox, northwind
):
    """allauth's sign-in code is an outbox row like any email: the request stores it and
    publishes its delivery at once (no sweep runs here), a real worker sends it, and the
    code in it logs the person in."""
    from django.test import Client
    from django.urls import reverse

    from tests.portal.factories import MembershipFactory

    provider = MembershipFactory(firm=northwind, role=Role.CLIENT, user__totp=False).user
    browser = Client()
    requested = time.monotonic()
    browser.post(reverse("account_request_login_code"), {"email": provider.email})

    [message] = smtp_sink.wait_for(1, timeout=DELIVERY_TIMEOUT)
    took = time.monotonic() - requested
    row = Notification.objects.get(kind="account.login_code")
    assert message["Message-ID"] == row.message_id
    assert message["Subject"].startswith("Northwind Credentialing: Your login code: ")
    assert [envelope.rcpt_tos for envelope in smtp_sink.envelopes] == [(provider.email,)]
    assert took < 10, f"the code took {took:.1f}s: delivery was not requested on commit"
    code = re.search(r"\b(\d{6})\b", message.get_body(preferencelist=("plain",)).get_content())
    assert message["Subject"].endswith(code.group(1))  # readable from the phone's banner
    response = browser.post(reverse("account_confirm_login_code"), {"code": code.group(1)})
    assert response.status_code == 302
    assert browser.get(reverse("dashboard")).status_code == 200

    assert wait_until(
        lambda: Notification.objects.filter(pk=row.pk, state=Notification.State.SENT).exists(),
        timeout=DELIVERY_TIMEOUT,
    )
    smtp_sink.assert_no_more_than(1, within=GRACE_PERIOD)
    assert mailoutbox == []  # nothing was sent from the request
