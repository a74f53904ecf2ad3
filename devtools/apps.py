from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Development tools: the benchmark, the scale seeder, chaos and load. Nothing imports them."""

    name = "devtools"
    verbose_name = "Development tools"
