from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def expire_due_grants() -> int:
    """Beat, every minute: connection requests past their deadline expire (CMS rejected them)."""
    return services.grants_expire_due()
