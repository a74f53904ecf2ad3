"""Deployment checks of our own, run by `manage.py check --deploy`."""

from django.conf import settings
from django.core.checks import Error, Tags, register

PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@register(Tags.security, deploy=True)
def shared_cache_for_rate_limits(app_configs, **kwargs):
    """Login rate limits and used TOTP codes live in the default cache: a per-process cache
    lets every web worker count alone, so ten workers allow ten times the attempts."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend in PER_PROCESS_CACHES:
        return [
            Error(
                "The default cache is per process: login rate limits do not hold across web "
                "workers.",
                hint="Set CACHE_URL to a shared cache, e.g. redis://redis:6379/1 (docs/deploy.md).",
                id="portal.E001",
            )
        ]
    return []
