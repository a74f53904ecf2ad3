from celery import shared_task

from . import digest


@shared_task(ignore_result=True)
def send_daily_digests() -> int:
    """Beat, every 15 minutes: each firm's staff get their digest once its local hour comes,
    and on Mondays its admins the weekly stuck report (each once: idempotency keys)."""
    return digest.send_due_digests() + digest.send_weekly_reports()
