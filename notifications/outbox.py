"""What other apps call: schedule messages, cancel them, reopen them.

`schedule` is called inside the transaction that changes a workflow, so the rows exist if and
only if the change committed. Delivery is asked for on commit; if the broker is away, the
minute sweep delivers anyway. Scheduling the same message twice is a no-op: every row has an
idempotency key (kind, object, step, channel, recipient) under a unique constraint.
"""

import contextlib
import hashlib
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from portal.models import Firm, User

from . import signin
from .models import Notification, SignInLink

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """A message to one person about one step, ready to render, with its due time."""

    firm: Firm
    kind: str
    subject_type: str
    subject_id: str
    step: str
    due_at: datetime
    template: str
    to_email: str
    recipient: User | None = None
    essential: bool = True
    link_path: str = "/dashboard/"
    context: dict = field(default_factory=dict)
    channels: tuple[str, ...] = (Notification.Channel.EMAIL, Notification.Channel.IN_APP)
    # A message to a provider or delegate with an account: its email carries a one-tap
    # sign-in link to `link_path` (notifications/signin.py) instead of the plain link.
    sign_in: bool = False

    def key(self, channel: str) -> str:
        who = self.recipient.pk if self.recipient is not None else self.to_email
        return ":".join(
            [self.kind, self.subject_type, self.subject_id, self.step, channel, str(who)]
        )


def message_id_for(key: str) -> str:
    """The same Message-ID for the same message, however often it is (re)sent."""
    domain = urlsplit(settings.SITE_URL).hostname or "credportal.local"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def _render(message: Message, link: str = "") -> tuple[str, str, str]:
    context = {
        "firm": message.firm,
        "recipient": message.recipient,
        "link": link or settings.SITE_URL + message.link_path,
        "one_tap": bool(link),
        "contact_email": message.firm.contact_email,
        **message.context,
    }
    name = f"emails/{message.template}"
    # Dates and times read in the firm's zone, whoever renders (a request, a worker).
    with timezone.override(message.firm.zone):
        title = " ".join(render_to_string(f"{name}_subject.txt", context).split())
        text = render_to_string(f"{name}_body.txt", context)
        html = render_to_string(f"{name}_body.html", context)
    return title[:200], text, html


def schedule(messages: list[Message]) -> int:
    """Store the messages' rows; a row that exists already (same key) is left as it is."""
    rows, links = [], []
    for message in messages:
        plain = _render(message)
        for channel in message.channels:
            if channel == Notification.Channel.IN_APP and message.recipient is None:
                continue  # no account yet: nothing to show in an inbox
            if channel == Notification.Channel.EMAIL and not message.to_email:
                continue
            key = message.key(channel)
            title, text, html = plain
            if channel == Notification.Channel.EMAIL and message.sign_in and message.recipient:
                link, token_row = signin.new_link(message, key)
                links.append(token_row)
                title, text, html = _render(message, link=link)
            rows.append(
                Notification(
                    firm=message.firm,
                    recipient=message.recipient,
                    to_email=message.to_email,
                    channel=channel,
                    kind=message.kind,
                    subject_type=message.subject_type,
                    subject_id=message.subject_id,
                    step=message.step,
                    idempotency_key=key,
                    due_at=message.due_at,
                    essential=message.essential,
                    title=title,
                    body_text=text,
                    body_html=html if channel == Notification.Channel.EMAIL else "",
                    link_path=message.link_path,
                    message_id=message_id_for(key),
                )
            )
    if not rows:
        return 0
    # 2,000 rows of 26 columns: 52,000 parameters, under PostgreSQL's 65,535 (Django lowers
    # it further where the database needs, as on SQLite).
    Notification.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    # A message scheduled again keeps its first link (its row, and so its email, stays).
    SignInLink.objects.bulk_create(links, ignore_conflicts=True, batch_size=2000)
    now = timezone.now()
    if any(r.channel == Notification.Channel.EMAIL and r.due_at <= now for r in rows):
        if (held := _held_requests.get()) is not None:
            held.append(True)
        else:
            transaction.on_commit(request_delivery)
    return len(rows)


_held_requests: ContextVar[list | None] = ContextVar("held_delivery_requests", default=None)


@contextlib.contextmanager
def delivery_requests_held():
    """Inside, scheduling asks for delivery once, when the block ends, not once per
    transaction: a bulk writer (the demo seed: hundreds of transactions) would otherwise
    queue hundreds of broker messages, each a worker run that finds nothing more to send."""
    held: list = []
    token = _held_requests.set(held)
    try:
        yield
    finally:
        _held_requests.reset(token)
    if held:
        transaction.on_commit(request_delivery)  # now, or when the enclosing one commits


def cancel(*, subject_type: str, subject_ids: list[str], kinds: list[str] | None = None) -> int:
    """Stop the scheduled messages about these objects (their step is done or gone)."""
    queryset = Notification.objects.filter(
        subject_type=subject_type,
        subject_id__in=subject_ids,
        state=Notification.State.SCHEDULED,
    )
    if kinds is not None:
        queryset = queryset.filter(kind__in=kinds)
    return queryset.update(state=Notification.State.CANCELLED)


def cancel_to_person(*, firm_id: int, user_id: int) -> int:
    """Stop every message still waiting for this person in this firm (they left it)."""
    return Notification.objects.filter(
        firm_id=firm_id, recipient_id=user_id, state=Notification.State.SCHEDULED
    ).update(state=Notification.State.CANCELLED)


def reopen(*, subject_type: str, subject_id: str, kinds: list[str], step_contains: str = "") -> int:
    """Put back the future messages of a step that is waiting again (`step_contains`: only
    those about one date, when earlier dates' messages were cancelled for good)."""
    queryset = Notification.objects.filter(
        subject_type=subject_type,
        subject_id=subject_id,
        kind__in=kinds,
        state=Notification.State.CANCELLED,
        due_at__gt=timezone.now(),
    )
    if step_contains:
        queryset = queryset.filter(step__contains=step_contains)
    return queryset.update(state=Notification.State.SCHEDULED)


def request_delivery() -> None:
    """Ask a worker to deliver what is due now; if the broker is away, the sweep will."""
    from .tasks import deliver_due

    try:
        deliver_due.delay()
    except Exception:  # noqa: BLE001  (any broker error: the rows wait for the sweep)
        logger.warning("delivery not queued (broker unavailable); the minute sweep delivers")
