"""The base class every backend extends.

A backend turns :class:`~django_broadcaster.events.CloudEvent` values into messages on one
transport. :meth:`BaseBackend.send_batch` is the one method to write; :meth:`BaseBackend.send` is
built on it. The transport client is built lazily in :meth:`BaseBackend.open`, never in
``__init__``, so building a backend (as the system checks do) touches no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ..events import CloudEvent
from ..exceptions import BackendUnavailable, BroadcasterImproperlyConfigured, DeliveryError

#: What :meth:`BaseBackend.send_batch` returns: the error of each event (by id) that was refused.
Rejections = dict[str, DeliveryError]


class BaseBackend:
    """Deliver CloudEvents to one destination.

    Backends are built as ``Backend(alias=alias, **OPTIONS)``. A subclass takes its own options
    as keyword arguments and passes the rest up; any option left over here is unknown, and
    raises ``BroadcasterImproperlyConfigured`` naming the alias.

    Backends are context managers: ``with backend:`` opens and closes the connection.
    """

    #: Whether :meth:`send_batch` sends many events per round trip (informational, for logs).
    supports_batching = False
    #: Whether :meth:`send_batch` usually takes longer than the worker's record of a batch, as
    #: with kafka-python, which builds and produces every message in Python. The worker then
    #: records each full batch while it sends the next; for quicker sends that overlap only
    #: adds contention for the CPU, so it records each batch before sending the next.
    sends_outlast_records = False

    def __init__(self, alias: str, **options: Any) -> None:
        if options:
            raise BroadcasterImproperlyConfigured(
                f"Backend {alias!r} ({type(self).__name__}) got unknown OPTIONS "
                f"{sorted(options)}; remove them or check their spelling."
            )
        self.alias = alias

    def open(self) -> bool:
        """Open the connection if needed; return whether this call opened it.

        The default has no connection to open and returns ``False``.
        """
        return False

    def close(self) -> None:
        """Close the connection if one is open. Safe to call twice, or without :meth:`open`."""

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """Deliver ``events`` and return the error of each one that was refused, by event id.

        An event missing from the result was accepted; a refused one maps to its
        :class:`~django_broadcaster.exceptions.EventRejected`. Raises
        :class:`~django_broadcaster.exceptions.BackendUnavailable` when the destination cannot be
        reached; the worker then retries the whole batch later without spending retries, so
        events accepted before the outage may be delivered twice. Subclasses implement this.

        A subclass written for 0.2.0 may implement only :meth:`send`: this method then calls it
        for each event.
        """
        if type(self).send is BaseBackend.send:
            raise NotImplementedError(f"{type(self).__name__} must implement send_batch().")
        rejected: Rejections = {}
        for event in events:
            try:
                self.send(event)
            except BackendUnavailable:
                raise
            except DeliveryError as exc:
                rejected[str(event.id)] = exc
        return rejected

    def send(self, event: CloudEvent) -> None:
        """Deliver one event through :meth:`send_batch`, or raise its ``DeliveryError``.

        Raises ``EventRejected`` when the destination refuses the event and
        ``BackendUnavailable`` when it cannot be reached.
        """
        error = self.send_batch([event]).get(str(event.id))
        if error is not None:
            raise error

    def __enter__(self) -> BaseBackend:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"
