"""The Celery app, configured from Django settings (CELERY_* names)."""

import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("credportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    # A task is acknowledged after it ran, and given back if its worker process dies, so a
    # killed worker loses nothing; tasks are written to be safe to run twice.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=300,
    task_soft_time_limit=240,
    # Publishing must not hang a web request when the broker is away: a bounded retry, then
    # an error the caller handles (the outbox sweep sends what was not published).
    task_publish_retry=True,
    task_publish_retry_policy={
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
    broker_connection_retry_on_startup=True,
    broker_connection_timeout=2,
    timezone="UTC",
    enable_utc=True,
)
app.autodiscover_tasks()


def solo_worker_command(*options: str) -> list[str]:
    """The command line of one quiet worker process (solo pool; no gossip, mingle or
    heartbeat between workers), as the benchmark and the tests start it."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "portal",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        *options,
    ]
