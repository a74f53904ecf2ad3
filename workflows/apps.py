from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self):
        from clients.signals import client_reassigned

        from . import open_steps
        from .notify import bounces  # noqa: F401  (connects the bouncing address receivers)

        client_reassigned.connect(open_steps.reassigned, dispatch_uid="workflows.open_steps")
