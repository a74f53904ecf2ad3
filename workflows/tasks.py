from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def expire_due_grants() -> int:
    """Beat, every minute: connection requests past their deadline expire (CMS rejected them)."""
    return services.grants_expire_due()


@shared_task(ignore_result=True)
def lapse_due_reconsiderations() -> int:
    """Beat, hourly: reconsideration windows past their deadline close (nothing was filed)."""
    return services.reconsiderations_lapse_due()
