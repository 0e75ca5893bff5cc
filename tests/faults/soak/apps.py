"""The soak as a Django app: its view, and the consumers' handlers registered in ``ready()``."""

from django.apps import AppConfig


class SoakConfig(AppConfig):
    name = "tests.faults.soak"
    label = "soak"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers the consumers' handlers)
