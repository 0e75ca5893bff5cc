"""Backends deliver events to one transport each; choose them in ``BROADCASTER["BACKENDS"]``.

``django_broadcaster.backends.RedisStreamBackend``, ``...KafkaBackend`` and
``...ConfluentKafkaBackend`` are importable from here, but their client libraries are imported
only when one of them is used, so the core works without ``redis``, ``kafka-python`` or
``confluent-kafka`` installed.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.utils.module_loading import import_string

from ..conf import BackendConfig, get_settings
from ..exceptions import BroadcasterImproperlyConfigured
from .base import BaseBackend, Rejections
from .console import ConsoleBackend
from .locmem import LocMemBackend

__all__ = [
    "BaseBackend",
    "ConfluentKafkaBackend",
    "ConsoleBackend",
    "KafkaBackend",
    "LocMemBackend",
    "PublisherBackend",
    "RedisStreamBackend",
    "Rejections",
    "create_backend",
    "create_backends",
]

_LAZY = {
    "RedisStreamBackend": ".redis",
    "KafkaBackend": ".kafka",
    "ConfluentKafkaBackend": ".kafka",
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
    imported, is not a :class:`BaseBackend`, its client library is missing or an option is wrong.
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
        raise BroadcasterImproperlyConfigured(f"Backend {config.alias!r}: {exc}") from exc


def create_backends() -> dict[str, BaseBackend]:
    """Build every backend in ``BROADCASTER["BACKENDS"]``, keyed by alias."""
    return {alias: create_backend(config) for alias, config in get_settings().backends.items()}
