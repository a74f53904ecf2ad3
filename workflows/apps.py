from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self):
        from . import notify  # noqa: F401  (connects the bouncing address receiver)
