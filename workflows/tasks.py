import logging

from celery import shared_task
from celery.signals import beat_init
from django.db import DatabaseError

from portal.models import Firm

from . import open_steps, services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def expire_due_grants() -> int:
    """Beat, every minute: connection requests past their deadline expire (CMS rejected them)."""
    return services.grants_expire_due()


@shared_task(ignore_result=True)
def lapse_due_reconsiderations() -> int:
    """Beat, hourly: reconsideration windows past their deadline close (nothing was filed)."""
    return services.reconsiderations_lapse_due()


@shared_task(ignore_result=True)
def reconcile_open_steps() -> int:
    """Beat, daily: each firm's read models (its open steps, its clients' next deadlines)
    checked against its workflows and repaired, one task per firm, so that a large firm
    has a task's time to itself and a failing one holds up no other. A repair is logged
    (it means a write went around the services). Returns how many firms were queued."""
    firms = list(Firm.objects.order_by("pk").values_list("pk", flat=True))
    for firm_id in firms:
        reconcile_firm_open_steps.delay(firm_id)
    return len(firms)


@shared_task(ignore_result=True)
def reconcile_firm_open_steps(firm_id: int) -> int:
    """One firm of `reconcile_open_steps`: how many rows and next deadlines it repaired."""
    firm = Firm.objects.filter(pk=firm_id).first()
    if firm is None:
        return 0  # deleted since it was queued
    try:
        result = open_steps.reconcile(firm)
    except DatabaseError:
        # Ids only in the log; the next run tries again.
        logger.exception("open steps of firm %s not reconciled; the next run tries again", firm_id)
        return 0
    return result["stale"] + result["missing"] + result["next_deadline"]


@beat_init.connect(dispatch_uid="workflows.reconcile_on_beat_start")
def reconcile_when_beat_starts(sender=None, **kwargs) -> None:
    """Beat starts after every deploy: the open steps are reconciled then too, so a table
    new in this release (or a backup restored from before it) is filled within minutes
    rather than at the next daily run."""
    reconcile_open_steps.delay()
