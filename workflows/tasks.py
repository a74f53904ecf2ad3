from celery import shared_task
from celery.signals import beat_init

from . import open_steps, services


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
    """Beat, daily: each firm's open steps (the stuck report's table) checked against its
    workflows and repaired; a repair is logged (it means a write went around the services)."""
    return open_steps.reconcile_all()


@beat_init.connect(dispatch_uid="workflows.reconcile_on_beat_start")
def reconcile_when_beat_starts(sender=None, **kwargs) -> None:
    """Beat starts after every deploy: the open steps are reconciled then too, so a table
    new in this release (or a backup restored from before it) is filled within minutes
    rather than at the next daily run."""
    reconcile_open_steps.delay()
