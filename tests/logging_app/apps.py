"""The app's configuration: ``handlers`` is imported by django_broadcaster's autodiscovery."""

from django.apps import AppConfig


class LoggingAppConfig(AppConfig):
    name = "tests.logging_app"
    label = "logging_app"
