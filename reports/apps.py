from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """What is stuck, how long stages take, trends, status reports, digests: reads workflows."""

    name = "reports"
    verbose_name = "Reports"
