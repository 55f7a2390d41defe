from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Pages for the people who run the server: /stats/."""

    name = "ops"
