from celery import shared_task

from . import delivery


@shared_task(ignore_result=True)
def deliver_due() -> dict[str, int]:
    """Asked for on commit, and by beat every minute as the sweep: delivers what is due."""
    return delivery.deliver_due()
