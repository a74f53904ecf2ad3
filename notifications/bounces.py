"""Addresses that bounce (issue 12, finding 8).

A 5xx answer to RCPT fails that message at once (`delivery._retry_or_fail`); this module
keeps what it says about the address:

1. `bounce_record`: the address is marked bouncing in its firm (one mark per address: a
   second bounce keeps the first), audited, and `address_bounced` is sent, so the domain side
   (`workflows.notify.address_bouncing`) tells the client's staff whose address it is and on
   which client. Notifications know no client: they say which address, the domain says who.
2. The mark stays until someone changes a record's address away from it and no other record
   of the firm still carries it (`address_in_use`, answered by the domain side): the
   services that edit an address send `portal.signals.address_edited`, and
   `_clear_when_edited` below is the one rule that takes marks off.
3. Messages to a marked address are still tried (docs/decisions.md): one that bounces fails
   at once, visible on its row and in the admins' alert, and the mark keeps its first date.
"""

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.dispatch import Signal, receiver

from portal import audit
from portal.models import Firm, User, normalize_email
from portal.signals import address_edited

from .models import BouncingAddress, Notification

logger = logging.getLogger(__name__)

# Sent once per mark (not per bounce), in the transaction that writes it.
address_bounced = Signal()  # mark=, notification=
# Asked before a mark is taken off: a receiver returns True when a record of the firm still
# carries the address (the provider's address is often an official's too).
address_in_use = Signal()  # firm=, address=


def bounce_record(*, row: Notification, reply: str) -> BouncingAddress | None:
    """Mark the address of `row` (an email the server refused for good) as bouncing, and have
    the people concerned told. Returns the new mark; None if the address was marked already."""
    address = normalize_email(row.to_email)
    if not address:
        return None
    with transaction.atomic():
        mark, created = BouncingAddress.objects.get_or_create(
            firm_id=row.firm_id,
            address=address,
            defaults={"reply": reply[:500], "notification": row},
        )
        if not created:
            return None
        audit.record(
            "email.marked_bouncing",
            actor=None,
            firm=row.firm,
            target=mark,
            target_label=address,
            data={"reply": mark.reply, "notification": str(row.public_id)},
        )
        _tell(mark, row)
    return mark


def _tell(mark: BouncingAddress, row: Notification) -> None:
    """Send `address_bounced` in a savepoint: a receiver that fails undoes only its own writes
    and never stops a delivery (the mark stays, and the admins have the failed message's
    alert). The soft time limit is not a receiver's failure: it ends the task."""
    try:
        with transaction.atomic():
            address_bounced.send(sender=BouncingAddress, mark=mark, notification=row)
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # noqa: BLE001  (a receiver's bug: logged, delivery goes on)
        logger.exception("telling people of bouncing address mark %s failed", mark.pk)


def bounce_clear(*, firm: Firm, addresses: list[str], actor: User | None) -> int:
    """Take the mark off these addresses of the firm (someone corrected them); one audit
    event per mark taken off. Returns how many were."""
    marks = list(
        BouncingAddress.objects.filter(
            firm=firm, address__in=[normalize_email(address) for address in addresses]
        )
    )
    for mark in marks:
        audit.record(
            "email.bounce_cleared",
            actor=actor,
            firm=firm,
            target=mark,
            target_label=mark.address,
            data={"since": mark.since.isoformat(), "reply": mark.reply},
        )
    BouncingAddress.objects.filter(pk__in=[mark.pk for mark in marks]).delete()
    return len(marks)


@receiver(address_edited, dispatch_uid="notifications.clear_bouncing_mark")
def _clear_when_edited(sender, firm: Firm, old: str, new: str, actor=None, **kwargs) -> None:
    """The rule: a mark goes when a record's address is changed away from it, whichever
    record (client, delegate, user). Typing a marked address into a record does not clear
    it: it bounced, and nothing says it works now."""
    if normalize_email(old) == normalize_email(new):
        return
    still_carried = address_in_use.send(sender=BouncingAddress, firm=firm, address=old)
    if not any(answer for _, answer in still_carried):
        bounce_clear(firm=firm, addresses=[old], actor=actor)
