"""The shop app."""

from django.apps import AppConfig
from django.conf import settings


class ShopConfig(AppConfig):
    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module runs its @event_registry.register decorators, in web processes and
        # workers alike. django_broadcaster also imports every app's "handlers" module itself;
        # importing it here keeps the registration visible, and is required for other names.
        from . import handlers  # noqa: F401

        # The handler of received webhooks, only when the shop sends them to itself: other
        # set-ups (the fault soak runs this project) keep their consumer handlers their own.
        if "webhook" in settings.BROADCASTER["BACKENDS"]:
            from . import received  # noqa: F401
