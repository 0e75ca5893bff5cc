"""Handlers for consumer subprocesses, installed with ``TEST_EXTRA_APPS`` (tests/settings.py)."""

from django.apps import AppConfig


class ConsumerAppConfig(AppConfig):
    name = "tests.consumer_app"
    label = "consumer_app"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers the handlers)
