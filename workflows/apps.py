from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self):
        from .notify import bounces  # noqa: F401  (connects the bouncing address receivers)
