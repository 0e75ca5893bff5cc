"""The Django application configuration."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.utils.module_loading import autodiscover_modules


class BroadcasterConfig(AppConfig):
    """Register the checks, follow ``override_settings`` (eager mode included) and import each
    app's ``handlers``.

    Importing ``<app>.handlers`` for every installed app (as the admin imports ``<app>.admin``)
    registers the handlers defined there with ``@event_registry.register``, in the web process
    and the worker alike. An app without a ``handlers`` module is skipped; an error raised while
    importing one propagates, so a broken handlers module stops start-up.
    """

    name = "django_broadcaster"
    verbose_name = "Broadcaster"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, schema_checks  # noqa: F401  (registers the checks)
        from .conf import reset_on_setting_changed
        from .worker.eager import follow_setting

        setting_changed.connect(reset_on_setting_changed, dispatch_uid="django_broadcaster.conf")
        setting_changed.connect(follow_setting, dispatch_uid="django_broadcaster.eager")
        follow_setting()
        autodiscover_modules("handlers")


class DjangoBroadcasterConfig(BroadcasterConfig):
    """0.1.1's name of the app's configuration, for ``INSTALLED_APPS`` that still name it."""

    default = False  # BroadcasterConfig stays the one Django picks for "django_broadcaster"
