"""A local handler's destination name: ``handler:`` and its dotted path, unique in its registry.

The name is what the outbox row's ``delivery`` records for the handler, so it must stay the same
across restarts: it is derived from where the function is defined, never from its identity.
Two handlers sharing a path (lambdas, bound methods of two instances) are told apart by ``#2``,
``#3``... appended in registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

HANDLER_PREFIX: Final = "handler:"


def handler_name(handler: Callable[..., object]) -> str:
    """Return the destination name of ``handler``: ``handler:`` and its dotted path."""
    owner = getattr(handler, "__self__", None)  # bound built-in methods have no __module__
    module = getattr(handler, "__module__", None) or type(owner).__module__
    qualname = getattr(handler, "__qualname__", None) or repr(handler)
    return f"{HANDLER_PREFIX}{module}.{qualname}"


class HandlerNames:
    """The names given so far in one registry: each handler keeps the first it got."""

    def __init__(self) -> None:
        self._names: list[tuple[Callable[..., object], str]] = []

    def of(self, handler: Callable[..., object]) -> str:
        """Return the name of ``handler``, giving it one (a suffixed one if taken) if new."""
        known = self.known(handler)
        if known is not None:
            return known
        base = handler_name(handler)
        taken = {name for _, name in self._names}
        name, suffix = base, 1
        while name in taken:
            suffix += 1
            name = f"{base}#{suffix}"
        self._names.append((handler, name))
        return name

    def known(self, handler: Callable[..., object]) -> str | None:
        """Return the name ``handler`` was given, or ``None`` if it has none yet."""
        for known, name in self._names:
            # ==, not is: bound methods are made anew at each access; a command's handler is
            # registered wrapped, and known by the function too.
            if handler in (known, getattr(known, "__wrapped__", None)):
                return name
        return None

    def clear(self) -> None:
        """Forget every name given."""
        self._names.clear()
