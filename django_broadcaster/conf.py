"""The ``BROADCASTER`` setting, read in one place.

Settings are read when first needed, never at import time, and read again after Django's
``setting_changed`` signal (so ``override_settings`` works in tests). Problems are reported by the
system checks in :mod:`django_broadcaster.checks`; code that runs later calls :func:`get_settings`,
which raises :class:`~django_broadcaster.exceptions.BroadcasterImproperlyConfigured`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, Final

from django.conf import settings

from .exceptions import BroadcasterImproperlyConfigured

SETTING_NAME: Final = "BROADCASTER"
LEGACY_SETTING_NAME: Final = "OUTBOX_PUBLISHERS"
BACKEND_KEYS: Final = frozenset({"BACKEND", "OPTIONS", "DEAD_LETTER"})


@dataclass(frozen=True)
class BackendConfig:
    """One entry of ``BACKENDS``: the alias, the backend class's dotted path, its options, and
    the alias its failed events go to (``DEAD_LETTER``, checked by :mod:`.dead_letters`)."""

    alias: str
    backend: str
    options: Mapping[str, Any] = field(default_factory=dict)
    dead_letter: str | None = None


@dataclass(frozen=True)
class BroadcasterSettings:
    """The validated ``BROADCASTER`` setting, with defaults filled in."""

    backends: Mapping[str, BackendConfig] = field(default_factory=dict)
    batch_size: int = 100
    poll_interval: timedelta = timedelta(seconds=1)
    listen: bool = True
    lease_duration: timedelta = timedelta(seconds=60)
    max_retries: int = 5
    retry_base_delay: timedelta = timedelta(seconds=2)
    retry_max_delay: timedelta = timedelta(minutes=10)
    breaker_base_delay: timedelta = timedelta(seconds=1)
    breaker_max_delay: timedelta = timedelta(seconds=30)
    send_deadline: timedelta = timedelta(seconds=2)
    handler_timeout: timedelta | None = timedelta(seconds=10)
    max_data_size: int = 64 * 1024
    shutdown_timeout: timedelta = timedelta(seconds=20)
    cleanup_after: timedelta | None = None
    cleanup_interval: timedelta = timedelta(hours=1)
    progress_interval: timedelta | None = timedelta(seconds=5)
    eager: bool = False
    validate_data: bool = False
    routes: tuple[Any, ...] = ()  #: as written; :mod:`.routing` reads the rules
    schemas: Any = None  #: ``SCHEMAS`` as written; :mod:`.schemas` reads it
    asyncapi: Any = None  #: ``ASYNCAPI`` as written; :mod:`.asyncapi` reads it


# Maps each key of the BROADCASTER dict to its field and the type its value must have.
SETTING_FIELDS: Final[Mapping[str, tuple[str, type]]] = {
    "BATCH_SIZE": ("batch_size", int),
    "POLL_INTERVAL": ("poll_interval", timedelta),
    "LISTEN": ("listen", bool),
    "LEASE_DURATION": ("lease_duration", timedelta),
    "MAX_RETRIES": ("max_retries", int),
    "RETRY_BASE_DELAY": ("retry_base_delay", timedelta),
    "RETRY_MAX_DELAY": ("retry_max_delay", timedelta),
    "BREAKER_BASE_DELAY": ("breaker_base_delay", timedelta),
    "BREAKER_MAX_DELAY": ("breaker_max_delay", timedelta),
    "SEND_DEADLINE": ("send_deadline", timedelta),
    "HANDLER_TIMEOUT": ("handler_timeout", timedelta),
    "MAX_DATA_SIZE": ("max_data_size", int),
    "SHUTDOWN_TIMEOUT": ("shutdown_timeout", timedelta),
    "CLEANUP_AFTER": ("cleanup_after", timedelta),
    "CLEANUP_INTERVAL": ("cleanup_interval", timedelta),
    "PROGRESS_INTERVAL": ("progress_interval", timedelta),
    "EAGER": ("eager", bool),
    "VALIDATE_DATA": ("validate_data", bool),
}
# WEBHOOK_RECEIVER is checked by the receiving view's module (django_broadcaster.receivers);
# ROUTES by django_broadcaster.routing; SCHEMAS by .schemas; ASYNCAPI by .asyncapi.
KNOWN_KEYS: Final = frozenset(SETTING_FIELDS) | {
    *("BACKENDS", "WEBHOOK_RECEIVER", "ROUTES", "SCHEMAS", "ASYNCAPI")
}
# Keys whose value must be more than zero.
POSITIVE_KEYS: Final = frozenset(
    {
        "BATCH_SIZE",
        "MAX_DATA_SIZE",
        "LEASE_DURATION",
        "CLEANUP_INTERVAL",
        "SEND_DEADLINE",
        "HANDLER_TIMEOUT",
        "PROGRESS_INTERVAL",
    }
)
# Keys whose value may be None (it turns the feature off).
NULLABLE_KEYS: Final = frozenset({"CLEANUP_AFTER", "HANDLER_TIMEOUT", "PROGRESS_INTERVAL"})
#: The largest ``max_retries``: the outbox's column is a 32-bit integer on PostgreSQL.
MAX_RETRIES_LIMIT: Final = 2**31 - 1
#: The priorities an event may have (-100 to 100); higher ones are claimed first, 0 is the default.
PRIORITIES: Final = range(-100, 101)


@cache
def get_settings() -> BroadcasterSettings:
    """Return the validated settings, or raise ``BroadcasterImproperlyConfigured``."""
    errors = settings_errors() + backend_shape_errors() + time_zone_errors()
    if errors:
        raise BroadcasterImproperlyConfigured(errors[0])
    raw = raw_settings()
    values = {SETTING_FIELDS[key][0]: value for key, value in raw.items() if key in SETTING_FIELDS}
    routes = raw.get("ROUTES", ())
    return BroadcasterSettings(
        backends=_backend_configs(backends_setting()),
        routes=tuple(routes) if isinstance(routes, list | tuple) else routes,
        schemas=raw.get("SCHEMAS"),
        asyncapi=raw.get("ASYNCAPI"),
        **values,
    )


def raw_settings() -> Mapping[str, Any]:
    """Return the ``BROADCASTER`` dict as the project wrote it (empty when unset)."""
    value = getattr(settings, SETTING_NAME, {})
    return value if isinstance(value, Mapping) else {}


def backends_setting() -> Mapping[str, Any]:
    """Return the backends as configured: ``BROADCASTER["BACKENDS"]``, else 0.1.1's setting."""
    backends = raw_backends()
    return backends if isinstance(backends, Mapping) else {}


def raw_backends() -> object:
    """Return the backends setting as written, whatever its type."""
    raw = raw_settings()
    return raw["BACKENDS"] if "BACKENDS" in raw else getattr(settings, LEGACY_SETTING_NAME, {})


def settings_errors() -> list[str]:
    """Return a message for each problem in the ``BROADCASTER`` setting (but not in backends)."""
    value = getattr(settings, SETTING_NAME, {})
    if not isinstance(value, Mapping):
        return [f"{SETTING_NAME} must be a dict, got {type(value).__name__}."]
    errors = [
        f"{SETTING_NAME} has an unknown key {key!r}; known keys are {sorted(KNOWN_KEYS)}."
        for key in value
        if key not in KNOWN_KEYS
    ]
    for key, (_, expected) in SETTING_FIELDS.items():
        if key in value:
            errors.extend(_value_errors(key, value[key], expected))
    if not isinstance(value.get("ROUTES", []), list | tuple):  # the rules: routing's checks
        errors.append(f'{SETTING_NAME}["ROUTES"] must be a list of rules.')
    return errors


def time_zone_errors() -> list[str]:
    """Return the problem with Django's ``USE_TZ`` setting, if any: the outbox needs it on."""
    if settings.USE_TZ:
        return []
    return [
        "django-broadcaster needs USE_TZ = True: with USE_TZ = False events get naive times, "
        "which CloudEvents does not allow (a send that writes the time fails), and on SQLite "
        "the worker cannot claim events."
    ]


def backend_shape_errors() -> list[str]:
    """Return a message for each malformed ``BACKENDS`` entry (``BACKEND`` and ``OPTIONS``)."""
    value = raw_backends()
    if not isinstance(value, Mapping):
        return [
            f'{SETTING_NAME}["BACKENDS"] must be a dict of aliases, got {type(value).__name__}.'
        ]
    errors = []
    for alias, config in value.items():
        where = f'{SETTING_NAME}["BACKENDS"][{alias!r}]'
        if not isinstance(config, Mapping):
            errors.append(f"{where} must be a dict with BACKEND and OPTIONS.")
            continue
        unknown = sorted(set(config) - BACKEND_KEYS)
        if unknown:
            errors.append(
                f"{where} has unknown keys {unknown}; only {sorted(BACKEND_KEYS)} are allowed."
            )
        if not isinstance(config.get("BACKEND"), str):
            errors.append(f"{where} needs BACKEND, the dotted path of a backend class.")
        if not isinstance(config.get("OPTIONS", {}), Mapping):
            errors.append(f"{where}['OPTIONS'] must be a dict.")
    return errors


def _value_errors(key: str, value: object, expected: type) -> list[str]:
    if key in NULLABLE_KEYS and value is None:
        return []
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        return [
            f'{SETTING_NAME}["{key}"] must be a {expected.__name__}, got {type(value).__name__}.'
        ]
    if (isinstance(value, int) and value < 0) or (
        isinstance(value, timedelta) and value < timedelta(0)
    ):
        return [f'{SETTING_NAME}["{key}"] must not be negative.']
    if key in POSITIVE_KEYS and not value:
        return [f'{SETTING_NAME}["{key}"] must be greater than zero.']
    if key == "MAX_RETRIES" and isinstance(value, int) and value > MAX_RETRIES_LIMIT:
        return [f'{SETTING_NAME}["{key}"] must be at most {MAX_RETRIES_LIMIT} (2**31 - 1).']
    return []


def _backend_configs(backends: Mapping[str, Any]) -> dict[str, BackendConfig]:
    return {
        alias: BackendConfig(
            alias=alias,
            backend=config["BACKEND"],
            options=dict(config.get("OPTIONS", {})),
            dead_letter=_alias_or_none(config.get("DEAD_LETTER")),
        )
        for alias, config in backends.items()
    }


def _alias_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None  # else E060 says what is wrong


def reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Forget the cached settings when a test overrides them (connected to ``setting_changed``)."""
    if setting in {SETTING_NAME, LEGACY_SETTING_NAME, "USE_TZ"}:
        get_settings.cache_clear()
