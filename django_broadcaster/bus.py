"""Run a command now, and publish the messages that handlers return.

:func:`handle` is the in-process way to send a command: its one handler runs at once, in the
caller's transaction, and its result comes back. :func:`publish_returned` is how what a handler
returns becomes outbox rows, whoever called the handler (``handle()`` or the worker): exactly as
if the handler had called the publisher itself, in the handler's transaction.

A *message* is an event (a typed event instance or a :class:`~.events.CloudEvent`) or a command
(an instance of a :class:`~.commands.Command` class). A handler may return ``None``, a message,
or a list or tuple of messages; a command's handler may also return any other value, its result,
which is not published.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from .commands import Command, CommandHandler
from .events import CloudEvent
from .exceptions import BroadcasterImproperlyConfigured
from .handler_names import handler_name
from .publishers import publisher
from .registry import EventRegistry, event_registry
from .typed import event_type_of


def handle(command: Command, *, registry: EventRegistry | None = None) -> Any:
    """Run the one handler of ``command`` now, inside the caller's transaction; return its result.

    The handler gets ``command`` itself, in a savepoint (``transaction.atomic()``) of the default
    database: if it raises, its writes roll back and the exception reaches the caller unchanged,
    the caller's transaction going on. Messages it returns are published in that savepoint (so
    they commit, or roll back, with the caller's transaction) and are returned too.

    ``registry`` defaults to :data:`~.registry.event_registry`. Raises ``TypeError`` if
    ``command`` is not a command, and :class:`~.exceptions.BroadcasterImproperlyConfigured` if
    its class has no handler or more than one (``manage.py check`` reports both: ``E010``,
    ``E011``).
    """
    if not isinstance(command, Command):
        raise TypeError(
            f"handle() takes a command, not a {type(command).__qualname__}: derive its class "
            "from django_broadcaster.Command, or publish an event with publisher.publish()."
        )
    handler = _only_handler(type(command), registry or event_registry)
    with transaction.atomic():
        result = handler.handler(command)
        if result is not None:
            publish_returned(handler, result)
    return result


async def ahandle(command: Command, *, registry: EventRegistry | None = None) -> Any:
    """Do what :func:`handle` does, from async code (in a thread, as the publisher's twins do)."""
    return await sync_to_async(handle)(command, registry=registry)


def publish_returned(handler: Callable[..., object], returned: object) -> None:
    """Publish the messages that ``handler`` returned, as the publisher's calls would have.

    Call it in the handler's transaction. ``returned`` is a message or a list or tuple of them;
    anything else is ignored for a command's handler (it is its result) and raises ``TypeError``
    naming the handler and the value's type for an event's handler.
    """
    messages = _messages_in(returned)
    if messages is None:
        if isinstance(handler, CommandHandler):
            return
        raise TypeError(
            f"{handler_name(handler)} returned a {type(returned).__qualname__}: an event's "
            "handler returns None, an event, a command, or a list of them."
        )
    for message in messages:
        if isinstance(message, CloudEvent):
            publisher.publish_cloud_event(message)
        else:
            publisher.publish(message)


def _only_handler(command_class: type[Command], registry: EventRegistry) -> CommandHandler:
    found = list(registry.handlers_for(event_type_of(command_class)).items())
    if len(found) == 1 and isinstance(found[0][1], CommandHandler):
        return found[0][1]
    names = ", ".join(name for name, _ in found) or "none"
    raise BroadcasterImproperlyConfigured(
        f"{command_class.__qualname__} must have exactly one handler, registered with its class, "
        f"and has {names}: register one with @event_registry.register({command_class.__name__})."
    )


def _messages_in(value: object) -> list[object] | None:
    """Return the messages ``value`` is made of, or ``None`` if it is not one or a list of them."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    return items if all(_is_message(item) for item in items) else None


def _is_message(value: object) -> bool:
    if isinstance(value, CloudEvent | Command):
        return True
    cls = type(value)
    typed = dataclasses.is_dataclass(value) or hasattr(cls, "model_dump")
    return typed and isinstance(getattr(cls, "event_type", None), str)
