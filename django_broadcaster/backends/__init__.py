"""Backends deliver events to one transport each; choose them in ``BROADCASTER["BACKENDS"]``.

``django_broadcaster.backends.RedisStreamBackend``, ``...KafkaBackend``,
``...ConfluentKafkaBackend``, ``...RabbitMQBackend`` and ``...WebhookBackend`` are importable from
here, but their client libraries are imported only when one of them is used, so the core works
without ``redis``, ``kafka-python``, ``confluent-kafka``, ``pika`` or ``urllib3`` installed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from importlib import import_module
from typing import Any

from django.utils.module_loading import import_string

from ..conf import BackendConfig, get_settings
from ..exceptions import BroadcasterImproperlyConfigured, InvalidEvent, UnknownBackend
from .base import BaseBackend, Rejections, accepted_options, label, unknown_options
from .console import ConsoleBackend
from .locmem import LocMemBackend

__all__ = [
    "BaseBackend",
    "ConfluentKafkaBackend",
    "ConsoleBackend",
    "KafkaBackend",
    "LocMemBackend",
    "PublisherBackend",
    "RabbitMQBackend",
    "RedisStreamBackend",
    "Rejections",
    "WebhookBackend",
    "create_backend",
    "create_backends",
]

_LAZY = {
    "RedisStreamBackend": ".redis",
    "KafkaBackend": ".kafka",
    "ConfluentKafkaBackend": ".kafka",
    "WebhookBackend": ".webhook",
    "RabbitMQBackend": ".rabbitmq",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: 0.1.1's name of :class:`BaseBackend`.
PublisherBackend = BaseBackend


def create_backend(config: BackendConfig) -> BaseBackend:
    """Build the backend ``config`` describes; the caller opens and closes it.

    Raises ``BroadcasterImproperlyConfigured`` naming the alias when the dotted path cannot be
    imported, is not a :class:`BaseBackend`, its client library is missing, or an option is
    unknown, missing or wrong.
    """
    try:
        backend_class = import_string(config.backend)
    except ImportError as exc:
        raise BroadcasterImproperlyConfigured(
            f"Backend {config.alias!r}: cannot import {config.backend!r} ({exc})."
        ) from exc
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        raise BroadcasterImproperlyConfigured(
            f"Backend {config.alias!r}: {config.backend!r} is not a BaseBackend subclass."
        )
    try:
        return backend_class(config.alias, **config.options)
    except TypeError as exc:
        problem = _call_problem(backend_class, config.options) or str(exc)
        raise BroadcasterImproperlyConfigured(
            f"{label(config.alias, backend_class)}: {problem}."
        ) from exc


def _call_problem(backend_class: type[BaseBackend], options: Mapping[str, Any]) -> str:
    """Return the missing required options of a call that raised ``TypeError``, and the unknown
    ones (a misspelt required option is both), or ``""`` if none is missing.

    Asked only after the call failed: a subclass may pass a required option of its base itself.
    """
    accepted = accepted_options(backend_class)
    missing = [repr(name) for name, needed in accepted.items() if needed and name not in options]
    if not missing:
        return ""
    noun = "option" if len(missing) == 1 else "options"
    unknown = set(options) - set(accepted)
    also = f"; {unknown_options(backend_class, unknown)}" if unknown else ""
    return f"missing required {noun} {', '.join(missing)}{also}"


def create_backends() -> dict[str, BaseBackend]:
    """Build every backend in ``BROADCASTER["BACKENDS"]``, keyed by alias."""
    return {alias: create_backend(config) for alias, config in get_settings().backends.items()}


def checked_aliases(backends: Sequence[str], known: Collection[str]) -> list[str]:
    """Return the aliases a publisher chose, as a list, if each is one of ``known``.

    Raises :class:`InvalidEvent` for a string (a common slip for a one-alias list) and
    :class:`UnknownBackend` naming the first alias that is not configured.
    """
    if isinstance(backends, str):
        raise InvalidEvent(f"backends must be a list of aliases, got the string {backends!r}.")
    if unknown := [alias for alias in backends if alias not in known]:
        raise UnknownBackend(f"Unknown backend alias {unknown[0]!r}; configured: {sorted(known)}.")
    return list(backends)
