"""Commands: a request for one thing to be done, by exactly one handler whose result comes back.

A command class is a typed event class (a dataclass or pydantic v2 model naming its CloudEvent
``event_type``, see :mod:`.typed`) that also derives from :class:`Command`::

    @dataclass(frozen=True)
    class PlaceOrder(Command):
        event_type: ClassVar[str] = "shop.place_order"
        source: ClassVar[str] = "shop"
        sku: str

    @event_registry.register(PlaceOrder)
    def place_order(command: PlaceOrder) -> int:
        ...

Its handler gets the command instance, where an event's handler gets the CloudEvent. Run it now
with :func:`~django_broadcaster.bus.handle`, or later through the outbox with
``publisher.publish(command)``: the worker then runs that one handler, and no backend nor
catch-all handler gets the command (a command goes from one sender to one receiver).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, Final

from .events import CloudEvent
from .typed import event_type_of, from_cloud_event

#: Each command class defined so far, by its CloudEvent type (classes without one are bases).
COMMANDS: Final[dict[str, type[Command]]] = {}


class Command:
    """Derive a command class from this (beside ``@dataclass`` or pydantic's ``BaseModel``).

    Defining the class is enough for the package to know it: ``manage.py check`` then requires
    exactly one handler for it (``django_broadcaster.E010``, ``E011``).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        with contextlib.suppress(TypeError):  # an abstract base of commands names no type
            COMMANDS[event_type_of(cls)] = cls


class CommandHandler:
    """A command's handler as the registry calls it: with the command rebuilt from its event.

    It takes the handler's name (``functools.update_wrapper``), so the destination's name is the
    handler's own; :attr:`handler` is the function registered, which ``handle()`` calls directly.
    """

    def __init__(self, command_class: type[Command], handler: Callable[[Any], object]) -> None:
        self.command_class, self.handler = command_class, handler
        functools.update_wrapper(self, handler)

    def __call__(self, event: CloudEvent) -> object:
        return self.handler(from_cloud_event(self.command_class, event))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CommandHandler):
            return NotImplemented
        return (self.command_class, self.handler) == (other.command_class, other.handler)

    def __hash__(self) -> int:
        return hash((self.command_class, self.handler))


def as_registered(
    registered_for: type | None, handler: Callable[..., object], when: object
) -> Callable[[CloudEvent], object]:
    """Return what the registry should call for ``handler``, registered for a class or a type.

    A command class's handler is wrapped in a :class:`CommandHandler`; any other comes back as it
    is. Raises ``TypeError`` for a command handler given a ``when`` predicate: the one handler of
    a command must always run.
    """
    if registered_for is None or not issubclass(registered_for, Command):
        return handler
    if when is not None:
        raise TypeError(
            f"{registered_for.__qualname__} is a command: its one handler always runs, so it "
            "takes no when= predicate."
        )
    return CommandHandler(registered_for, handler)


def is_command_type(event_type: str) -> bool:
    """Return whether ``event_type`` is the CloudEvent type of a command class defined so far."""
    return event_type in COMMANDS
