"""Test helpers: see what code published, and deliver it on the spot.

In the spirit of ``django.core.mail.outbox``::

    from django_broadcaster.testing import captured_events, run_worker

    def test_checkout_publishes_the_order(client):
        with captured_events() as events:
            client.post("/checkout/", {"sku": "A1"})
        events.assert_published("order.created", data__contains={"sku": "A1"})

    def test_the_order_handler_sends_mail(client):
        client.post("/checkout/", {"sku": "A1"})
        run_worker()
        assert len(mail.outbox) == 1

With pytest, the ``broadcaster_events`` fixture (registered by this package's pytest plugin)
yields the :class:`CapturedEvents` of the whole test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, overload

from .backends import BaseBackend
from .events import CloudEvent
from .outbox.models import OutboxEvent
from .registry import EventRegistry
from .signals import event_created
from .typed import event_type_of
from .worker import Worker, WorkerStats

#: The CloudEvent attributes a lookup may name.
LOOKUP_ATTRIBUTES: Final = frozenset(
    {field.name for field in dataclasses.fields(CloudEvent)} | {"type", "partition_key"}
)


class CapturedEvents(Sequence[CloudEvent]):
    """The events published while a :func:`captured_events` block ran, in publish order.

    A sequence of :class:`CloudEvent` (with their ids); :attr:`rows` holds the outbox rows.
    Events are recorded when they are written, so those of a transaction that later rolls back
    are here too.
    """

    def __init__(self) -> None:
        self.rows: list[OutboxEvent] = []

    @overload
    def __getitem__(self, index: int) -> CloudEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[CloudEvent]: ...

    def __getitem__(self, index: int | slice) -> CloudEvent | list[CloudEvent]:
        if isinstance(index, slice):
            return [row.as_cloud_event() for row in self.rows[index]]
        return self.rows[index].as_cloud_event()

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def types(self) -> list[str]:
        """Return the type of each captured event, in order."""
        return [row.event_type for row in self.rows]

    def of_type(self, event_type: str | type) -> list[CloudEvent]:
        """Return the captured events of ``event_type`` (a type, or a typed event class)."""
        wanted = _type_name(event_type)
        return [event for event in self if event.event_type == wanted]

    def filter(self, event_type: str | type, **lookups: Any) -> list[CloudEvent]:
        """Return the events of ``event_type`` that match every lookup.

        A lookup is a CloudEvent attribute (``source=``, ``subject=``, ``data=``,
        ``extensions=``...) compared with ``==``, or ``<attribute>__contains=``: for a mapping
        every key must be there with a matching value (nested mappings match the same way, so
        ``data__contains={"order": {"id": 1}}`` ignores the order's other keys), otherwise
        ``in`` is used. Raises ``TypeError`` for an unknown attribute.
        """
        return [event for event in self.of_type(event_type) if _matches(event, lookups)]

    def assert_published(
        self, event_type: str | type, *, count: int | None = None, **lookups: Any
    ) -> list[CloudEvent]:
        """Assert that an event matching :meth:`filter` was published; return the matches.

        ``count`` asserts the exact number of matches. Raises ``AssertionError`` listing what
        was published otherwise.
        """
        found = self.filter(event_type, **lookups)
        expected = "at least 1" if count is None else str(count)
        if (count is None and not found) or (count is not None and len(found) != count):
            raise AssertionError(
                f"Expected {expected} {_type_name(event_type)!r} event(s)"
                f"{_describe(lookups)}, found {len(found)}. Published: {self._summary()}"
            )
        return found

    def assert_not_published(self, event_type: str | type, **lookups: Any) -> None:
        """Assert that no event matching :meth:`filter` was published."""
        self.assert_published(event_type, count=0, **lookups)

    def clear(self) -> None:
        """Forget the events captured so far."""
        self.rows.clear()

    def _record(self, sender: object, event: OutboxEvent, **kwargs: Any) -> None:
        self.rows.append(event)

    def _summary(self) -> str:
        if not self.rows:
            return "nothing."
        return "; ".join(f"{row.event_type} {row.data!r}" for row in self.rows)


@contextmanager
def captured_events() -> Iterator[CapturedEvents]:
    """Record every event published (by any thread) inside the ``with`` block."""
    captured = CapturedEvents()
    event_created.connect(captured._record, sender=OutboxEvent, weak=False)
    try:
        yield captured
    finally:
        event_created.disconnect(captured._record, sender=OutboxEvent)


def run_worker(
    *,
    backends: Mapping[str, BaseBackend] | None = None,
    registry: EventRegistry | None = None,
) -> WorkerStats:
    """Deliver every event that is due now, in this thread, and return the worker's counts.

    It claims batch after batch until nothing is due, so events that fail are rescheduled (by
    ``RETRY_BASE_DELAY``) rather than retried at once. ``backends`` defaults to
    ``BROADCASTER["BACKENDS"]`` and ``registry`` to the global handler registry; the backends
    are closed on return. Unlike the worker's own loop it neither closes database connections
    nor waits out database errors, which propagate: so it works inside a test's transaction
    (plain ``django_db`` tests and ``TestCase``).
    """
    options: dict[str, Any] = {}
    if backends is not None:
        options["backends"] = backends
    if registry is not None:
        options["registry"] = registry
    worker = Worker(burst=True, **options)
    try:
        while worker.run_once().handled:
            pass
    finally:
        worker.close()
    return worker.stats


def _type_name(event_type: str | type) -> str:
    return event_type_of(event_type) if isinstance(event_type, type) else event_type


def _matches(event: CloudEvent, lookups: Mapping[str, Any]) -> bool:
    for lookup, expected in lookups.items():
        attribute, _, operator = lookup.partition("__")
        if attribute not in LOOKUP_ATTRIBUTES:
            raise TypeError(
                f"Unknown lookup {lookup!r}: CloudEvent attributes are {sorted(LOOKUP_ATTRIBUTES)}."
            )
        if operator not in ("", "contains"):
            raise TypeError(
                f"Unknown lookup {lookup!r}: use {attribute}= or {attribute}__contains=."
            )
        actual = getattr(event, attribute)
        if not (_contains(actual, expected) if operator else actual == expected):
            return False
    return True


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _same_or_contains(actual[key], value)
            for key, value in expected.items()
        )
    try:
        return bool(expected in actual)
    except TypeError:
        return False


def _same_or_contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        return _contains(actual, expected)
    return bool(actual == expected)


def _describe(lookups: Mapping[str, Any]) -> str:
    if not lookups:
        return ""
    return " with " + ", ".join(f"{name}={value!r}" for name, value in lookups.items())
