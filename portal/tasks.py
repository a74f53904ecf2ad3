import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from .emails import build_email
from .models import Invitation
from .services import invitation_token

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=5, retry_backoff=True, retry_jitter=True)
def send_invitation_email(self, *, invitation_id: int) -> None:
    """Email the newest link of a pending invitation. Safe to run twice (sends the same link)."""
    invitation = (
        Invitation.objects.select_related("firm", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or invitation.status != Invitation.Status.PENDING:
        logger.info("invitation %s no longer pending; not sent", invitation_id)
        return
    url = settings.SITE_URL + reverse("accept_invitation", args=[invitation_token(invitation)])
    message = build_email(
        "invitation",
        to=invitation.email,
        context={"invitation": invitation, "firm": invitation.firm, "url": url},
    )
    try:
        message.send()
    except OSError as exc:
        raise self.retry(exc=exc) from exc
    with transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())
    logger.info("invitation %s sent", invitation_id)
