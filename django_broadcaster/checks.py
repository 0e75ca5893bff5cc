"""System checks: bad settings fail at start-up (``manage.py check``), not in the worker.

- ``django_broadcaster.E001``: a key or value of ``BROADCASTER`` is wrong.
- ``django_broadcaster.E002``: a ``BACKENDS`` entry is malformed.
- ``django_broadcaster.E003``: a backend cannot be built: unknown dotted path, not a backend
  class, a missing client library or an unknown or invalid option.
- ``django_broadcaster.W001``: the 0.1.1 setting ``OUTBOX_PUBLISHERS`` is still in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import (
    LEGACY_SETTING_NAME,
    SETTING_NAME,
    BackendConfig,
    backend_shape_errors,
    backends_setting,
    raw_settings,
    settings_errors,
)

HINT = "See the settings reference in the django-broadcaster documentation."


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report problems in ``BROADCASTER`` and its backends."""
    messages: list[CheckMessage] = [
        Error(message, hint=HINT, id="django_broadcaster.E001") for message in settings_errors()
    ]
    shape_errors = backend_shape_errors()
    messages += [
        Error(message, hint=HINT, id="django_broadcaster.E002") for message in shape_errors
    ]
    if not shape_errors:
        messages += _backend_errors()
    messages += _legacy_setting_warnings()
    return messages


def _backend_errors() -> list[CheckMessage]:
    from .backends import create_backend

    errors: list[CheckMessage] = []
    for alias, config in backends_setting().items():
        backend_config = BackendConfig(alias, config["BACKEND"], dict(config.get("OPTIONS", {})))
        try:
            create_backend(backend_config)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), hint=HINT, id="django_broadcaster.E003"))
    return errors


def _legacy_setting_warnings() -> list[CheckMessage]:
    if not hasattr(settings, LEGACY_SETTING_NAME):
        return []
    if "BACKENDS" in raw_settings():
        hint = f"It is ignored because {SETTING_NAME}['BACKENDS'] is set; remove it."
    else:
        hint = f"Move its value to {SETTING_NAME} = {{'BACKENDS': ...}}; the format is the same."
    return [
        Warning(
            f"The {LEGACY_SETTING_NAME} setting is deprecated.",
            hint=hint,
            id="django_broadcaster.W001",
        )
    ]
