from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Tenancy and accounts"

    def ready(self):
        from . import checks, signals  # noqa: F401  (registers checks; connects receivers)
