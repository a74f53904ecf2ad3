"""Invitation emails. The invitation row is its own outbox: `sent_at` is empty until the email
went out, so a broker outage at commit time delays the email (the sweep sends it) but never
loses it, and claiming the row before sending keeps two runs from sending it twice."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from .emails import build_email
from .models import Invitation
from .services import invitation_token

logger = logging.getLogger(__name__)

# How long the on-commit path has before the sweep considers an invitation not sent.
SWEEP_GRACE = timedelta(minutes=2)


def _claim(invitation_id: int) -> bool:
    """Mark the invitation sent before sending: only one caller wins the row."""
    return bool(
        Invitation.objects.open()
        .filter(pk=invitation_id, sent_at__isnull=True, expires_at__gt=timezone.now())
        .update(sent_at=timezone.now())
    )


@shared_task(bind=True, max_retries=5, retry_backoff=True, retry_jitter=True)
def send_invitation_email(self, *, invitation_id: int) -> None:
    """Email the newest link of a pending invitation, once."""
    if not _claim(invitation_id):
        logger.info("invitation %s already sent or closed", invitation_id)
        return
    invitation = Invitation.objects.select_related("firm").get(pk=invitation_id)
    url = settings.SITE_URL + reverse("accept_invitation", args=[invitation_token(invitation)])
    message = build_email(
        "invitation",
        to=invitation.email,
        context={"invitation": invitation, "firm": invitation.firm, "url": url},
    )
    try:
        message.send()
    except OSError as exc:
        # Give the row back so a retry (or the sweep) sends it.
        Invitation.objects.filter(pk=invitation_id).update(sent_at=None)
        raise self.retry(exc=exc) from exc
    logger.info("invitation %s sent", invitation_id)


@shared_task
def send_pending_invitations() -> int:
    """Beat, every minute: send invitations whose on-commit publish never ran (broker down)."""
    cutoff = timezone.now() - SWEEP_GRACE
    pending = list(
        Invitation.objects.open()
        .filter(sent_at__isnull=True, issued_at__lte=cutoff, expires_at__gt=timezone.now())
        .values_list("pk", flat=True)[:500]
    )
    for invitation_id in pending:
        send_invitation_email.run(invitation_id=invitation_id)
    return len(pending)


def enqueue_invitation(invitation_id: int) -> None:
    """Publish after commit; if the broker is away, the sweep sends it later."""
    try:
        send_invitation_email.delay(invitation_id=invitation_id)
    except Exception:  # noqa: BLE001  (any broker error: the row stays unsent)
        logger.warning(
            "invitation %s not queued (broker unavailable); the sweep sends it", invitation_id
        )
