"""The shop app."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module runs its @event_registry.register decorators, in web processes and
        # workers alike. django_broadcaster also imports every app's "handlers" module itself;
        # importing it here keeps the registration visible, and is required for other names.
        from . import handlers  # noqa: F401
