"""The Django application configuration."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed


class BroadcasterConfig(AppConfig):
    """Register the system checks and keep the settings cache in step with ``override_settings``."""

    name = "django_broadcaster"
    verbose_name = "Broadcaster"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
        from .conf import reset_on_setting_changed

        setting_changed.connect(reset_on_setting_changed, dispatch_uid="django_broadcaster.conf")
