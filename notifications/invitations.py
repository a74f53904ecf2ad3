"""Invitation emails through the outbox: scheduled in the transaction that issues the link
(`portal.signals.invitation_issued`), so a worker killed mid-send, a broker outage or a
mail server outage delays the email and never loses it, and a resent link replaces the
email of the old one that has not gone out yet."""

from django.conf import settings
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from portal.models import Invitation
from portal.services import invitation_token
from portal.signals import invitation_closed, invitation_issued

from .models import Notification
from .outbox import Message, cancel, schedule

KIND = "portal.invitation"


def _cancel_unsent(invitation: Invitation) -> None:
    cancel(subject_type="invitation", subject_ids=[str(invitation.public_id)], kinds=[KIND])


@receiver(invitation_issued, dispatch_uid="notifications.invitation_email")
def schedule_invitation_email(sender, invitation: Invitation, **kwargs) -> None:
    _cancel_unsent(invitation)  # an older link no longer works: its email must not go out
    url = settings.SITE_URL + reverse("accept_invitation", args=[invitation_token(invitation)])
    schedule(
        [
            Message(
                firm=invitation.firm,
                kind=KIND,
                subject_type="invitation",
                subject_id=str(invitation.public_id),
                step=f"issued-{invitation.issued_at:%Y%m%dT%H%M%S%f}",
                due_at=timezone.now(),
                template="invitation",
                to_email=invitation.email,
                essential=True,
                context={"invitation": invitation, "url": url},
                channels=(Notification.Channel.EMAIL,),
            )
        ]
    )


@receiver(invitation_closed, dispatch_uid="notifications.invitation_closed")
def cancel_invitation_email(sender, invitation: Invitation, **kwargs) -> None:
    _cancel_unsent(invitation)
