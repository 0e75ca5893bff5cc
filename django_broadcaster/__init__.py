"""A transactional outbox for Django that delivers CloudEvents.

Publish with :data:`publisher` inside your transaction, run ``python manage.py outbox_worker``,
and the events reach every configured backend and the local handlers registered with
:data:`event_registry`; a :class:`Command` goes to its one handler, now with :func:`handle` or
later through the outbox; ``consume_redis`` and ``consume_kafka`` call those registered with
:data:`consumer_registry` with the events they read. The names in ``__all__`` are the public
API; each is importable from here and from the module that defines it. They load on first use,
so that importing the package (as ``INSTALLED_APPS`` does) imports no model before Django is
ready.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: Each public name and the module that defines it.
_HOMES = {
    "publisher": "publishers",
    "Publisher": "publishers",
    "CloudEvent": "events",
    "event_registry": "registry",
    "consumer_registry": "registry",
    "EventRegistry": "registry",
    "from_cloud_event": "typed",
    "Command": "commands",
    "handle": "bus",
    "ahandle": "bus",
    "OutboxEvent": "outbox.models",
    "Status": "outbox.models",
    "BaseBackend": "backends.base",
    "Rejections": "backends.base",
    "Worker": "worker.loop",
    "RetryPolicy": "retry",
    "BroadcasterError": "exceptions",
    "BroadcasterImproperlyConfigured": "exceptions",
    "InvalidEvent": "exceptions",
    "UnknownBackend": "exceptions",
    "DeliveryError": "exceptions",
    "EventRejected": "exceptions",
    "BackendUnavailable": "exceptions",
    "PredicateFailed": "exceptions",
    "event_created": "signals",
    "event_published": "signals",
    "event_failed": "signals",
}

__all__ = [
    "__version__",
    "ahandle",
    "BackendUnavailable",
    "BaseBackend",
    "BroadcasterError",
    "BroadcasterImproperlyConfigured",
    "CloudEvent",
    "Command",
    "consumer_registry",
    "DeliveryError",
    "event_created",
    "event_failed",
    "event_published",
    "event_registry",
    "EventRegistry",
    "EventRejected",
    "from_cloud_event",
    "handle",
    "InvalidEvent",
    "OutboxEvent",
    "PredicateFailed",
    "Publisher",
    "publisher",
    "Rejections",
    "RetryPolicy",
    "Status",
    "UnknownBackend",
    "Worker",
]  # the keys of _HOMES, and the version

if TYPE_CHECKING:
    from .backends.base import BaseBackend, Rejections
    from .bus import ahandle, handle
    from .commands import Command
    from .events import CloudEvent
    from .exceptions import (
        BackendUnavailable,
        BroadcasterError,
        BroadcasterImproperlyConfigured,
        DeliveryError,
        EventRejected,
        InvalidEvent,
        PredicateFailed,
        UnknownBackend,
    )
    from .outbox.models import OutboxEvent, Status
    from .publishers import Publisher, publisher
    from .registry import EventRegistry, consumer_registry, event_registry
    from .retry import RetryPolicy
    from .signals import event_created, event_failed, event_published
    from .typed import from_cloud_event
    from .worker.loop import Worker


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value  # later lookups find it without coming back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
