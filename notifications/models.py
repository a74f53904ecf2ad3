"""The notification outbox: one row per message and channel, written in the same transaction
as the change that causes it, delivered by Celery, shown in the in-app inbox."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.models import Firm


# Declared before the model, so that its partial indexes name the state set (a nested
# `Meta` cannot see the model's own names).
class NotificationState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# What the inbox shows once due: neither cancelled nor failed.
IN_INBOX = (NotificationState.SCHEDULED, NotificationState.SENT)


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        IN_APP = "in_app", "In the portal"

    State = NotificationState
    INBOX_STATES = IN_INBOX

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    to_email = models.EmailField(blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=48)
    # The object it is about (a grant, a round...), as label and public id: notifications
    # knows nothing of the workflows' models.
    subject_type = models.CharField(max_length=48)
    subject_id = models.CharField(max_length=64)
    step = models.CharField(max_length=32)
    idempotency_key = models.CharField(max_length=200, unique=True)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.SCHEDULED)
    essential = models.BooleanField(default=True)
    title = models.CharField(max_length=200)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    link_path = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-due_at", "-id"]
        indexes = [
            # The delivery sweep: due emails not yet sent.
            models.Index(
                fields=["due_at"],
                condition=models.Q(state="scheduled", channel="email"),
                name="notif_email_due",
            ),
            # Claims left behind by a killed worker.
            models.Index(
                fields=["claimed_at"],
                condition=models.Q(state="sending"),
                name="notif_sending",
            ),
            # Cancelling the reminders of a step that is done.
            models.Index(
                fields=["subject_type", "subject_id"],
                condition=models.Q(state="scheduled"),
                name="notif_open_by_subject",
            ),
            # The inbox.
            models.Index(
                fields=["recipient", "-due_at"],
                condition=models.Q(channel="in_app"),
                name="notif_inbox",
            ),
            # The unread count every page shows: only the unread rows, read from the index,
            # in the firm the person acts in (without the firm, PostgreSQL combined it with
            # the firm's index: 16 ms a page for a staff member with 8,000 unread at L).
            models.Index(
                fields=["recipient", "firm", "due_at"],
                condition=models.Q(
                    channel="in_app",
                    read_at__isnull=True,
                    state__in=[state.value for state in IN_INBOX],
                ),
                name="notif_unread_in_firm",
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.step} ({self.get_channel_display()})"


class Preference(models.Model):
    """What a person wants by email. Deadline reminders are essential and always sent."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    nonessential_email = models.BooleanField(
        "Email me updates that are not about a deadline", default=True
    )

    def __str__(self):
        return f"Preferences of {self.user}"


class SignInLink(models.Model):
    """The one-tap link in an email to a provider or delegate: it signs its recipient in
    (after their second factor, if they have one) and lands on the page the email is about.
    Single use, and good for 24 hours after the email went out; the token itself is only in
    the email, the database keeps its hash."""

    token_hash = models.CharField(max_length=64, unique=True)
    # The email it was sent in (the outbox row's key): the link counts from its sending.
    idempotency_key = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    fresh_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Sign-in link for {self.user}"


class BouncingAddress(models.Model):
    """An address the mail server refused for good (a 5xx to RCPT: no such user, mailbox
    disabled...), in one firm. Staff see "Email bouncing" beside it until someone changes a
    record's address away from it (`notifications.bounces`); messages to it are still tried
    (docs/decisions.md)."""

    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="+")
    address = models.EmailField()  # normalized (lowercase), as every stored address is
    since = models.DateTimeField(default=timezone.now)
    # What the server answered, e.g. "550 5.1.1 <x@y>: Recipient address rejected".
    reply = models.CharField(max_length=500)
    # The message that bounced (kept when the outbox row is gone).
    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["firm", "address"], name="notif_bouncing_per_firm"),
        ]

    def __str__(self):
        return f"{self.address} (bouncing since {self.since:%Y-%m-%d})"
