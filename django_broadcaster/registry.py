"""Handlers: functions called with an event, by the outbox worker or by a consumer.

Two registries keep the two roles apart, so one event never runs one handler twice:

- :data:`event_registry` holds **local handlers**: the outbox worker calls them with each event
  this project publishes, as a destination of its own next to the backends;
- :data:`consumer_registry` holds **consumer handlers**: ``consume_redis`` and ``consume_kafka``
  call them with each event read from a broker, through the inbox.

Register with ``@event_registry.register("order.created")`` (stack the decorator to cover several
types), with a typed event class (``@event_registry.register(OrderCreated)``, see
:mod:`django_broadcaster.typed`) or with ``@event_registry.register()`` for every event; the same
for ``consumer_registry``. Each matching handler gets the immutable
:class:`~django_broadcaster.events.CloudEvent`; in the worker each local handler is a destination
of its own, tracked apart from the others and from the backends. Each installed app's
``handlers`` module is imported at start-up, so that is the place for both kinds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Final, TypeVar

from django.db import transaction

from .events import CloudEvent
from .signals import event_created, event_published  # noqa: F401  (0.1.1 had them here)
from .stopping import StopNow
from .typed import event_type_of

logger = logging.getLogger(__name__)

Handler = Callable[[CloudEvent], object]
H = TypeVar("H", bound=Handler)

HANDLER_PREFIX: Final = "handler:"


def handler_name(handler: Handler) -> str:
    """Return the destination name of ``handler``: ``handler:`` and its dotted path."""
    owner = getattr(handler, "__self__", None)  # bound built-in methods have no __module__
    module = getattr(handler, "__module__", None) or type(owner).__module__
    qualname = getattr(handler, "__qualname__", None) or repr(handler)
    return f"{HANDLER_PREFIX}{module}.{qualname}"


class EventRegistry:
    """Map event types to the local handlers that receive them.

    Each handler gets a destination name, stable across restarts: ``handler:`` and its dotted
    path, with ``#2``, ``#3``... appended (in registration order) when two handlers share a path,
    as lambdas and bound methods can.
    """

    def __init__(self) -> None:
        self._by_type: dict[str, list[Handler]] = {}
        self._for_all: list[Handler] = []
        self._names: list[tuple[Handler, str]] = []
        self._found: dict[str, dict[str, Handler]] = {}  # handlers_for() until a change

    def register(self, event_type: str | type | None = None) -> Callable[[H], H]:
        """Return a decorator that registers a handler for ``event_type``, or for every event.

        ``event_type`` is a CloudEvent type, or a typed event class whose ``event_type`` is used
        (the handler still receives the :class:`CloudEvent`). The decorator returns the function
        unchanged, so it stacks. Registering the same function twice for the same type is a
        no-op. Raises ``TypeError`` for a class that names no event type.
        """
        if isinstance(event_type, type):
            event_type = event_type_of(event_type)

        def decorator(handler: H) -> H:
            handlers = (
                self._for_all if event_type is None else self._by_type.setdefault(event_type, [])
            )
            if handler not in handlers:
                handlers.append(handler)
                self._found.clear()
                logger.debug("Registered %s for %s", self._name_of(handler), event_type or "*")
            return handler

        return decorator

    def unregister(self, handler: Handler, event_type: str | None = None) -> None:
        """Remove ``handler`` from ``event_type``, or from the catch-alls; no error if absent."""
        handlers = self._for_all if event_type is None else self._by_type.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)
            self._found.clear()

    def handlers_for(self, event_type: str) -> dict[str, Handler]:
        """Return the handlers of ``event_type`` by destination name: its own, then catch-alls."""
        if event_type not in self._found:
            handlers = [*self._by_type.get(event_type, ()), *self._for_all]
            self._found[event_type] = {self._name_of(handler): handler for handler in handlers}
        return self._found[event_type]

    def call_handlers(
        self,
        event: CloudEvent,
        *,
        skip: Collection[str] = (),
        inside: Callable[[str], AbstractContextManager[object]] = lambda name: nullcontext(),
    ) -> Iterator[tuple[str, BaseException | None]]:
        """Call each handler of ``event`` but those in ``skip``; yield its name and its error.

        Each runs in a transaction of its own, with ``inside(name)`` entered around the call, so
        a failing handler rolls back only its own writes. Any exception a handler raises is its
        failure (``SystemExit`` and ``KeyboardInterrupt`` too); only the worker's own
        :class:`~django_broadcaster.stopping.StopNow` goes on up.
        """
        for name, handler in self.handlers_for(event.event_type).items():
            if name in skip:
                continue
            try:
                with transaction.atomic(), inside(name):
                    handler(event)
            except StopNow:
                raise
            except BaseException as exc:  # the handler's, whatever it is
                yield name, exc
            else:
                yield name, None

    def destinations(self) -> Mapping[str, frozenset[str] | None]:
        """Return each handler's destination name and the event types it gets (``None``: all)."""
        types: dict[str, set[str] | None] = {}
        for event_type, handlers in self._by_type.items():
            for handler in handlers:
                known = types.setdefault(self._name_of(handler), set())
                if known is not None:
                    known.add(event_type)
        for handler in self._for_all:
            types[self._name_of(handler)] = None
        return {name: None if got is None else frozenset(got) for name, got in types.items()}

    def clear(self) -> None:
        """Remove every handler (for tests)."""
        self._by_type.clear()
        self._for_all.clear()
        self._names.clear()
        self._found.clear()

    def _name_of(self, handler: Handler) -> str:
        for known, name in self._names:
            if known == handler:
                return name
        base = handler_name(handler)
        taken = {name for _, name in self._names}
        name, suffix = base, 1
        while name in taken:
            suffix += 1
            name = f"{base}#{suffix}"
        self._names.append((handler, name))
        return name


#: 0.1.1's name of :class:`EventRegistry`.
EventHandlerRegistry = EventRegistry

#: The registry the outbox worker reads: local handlers of the events this project publishes.
event_registry = EventRegistry()

#: The registry the consumers read: handlers of the events received from a broker.
consumer_registry = EventRegistry()
