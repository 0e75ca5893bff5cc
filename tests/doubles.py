"""Backends that misbehave on purpose, for tests of the worker's failure handling.

Every double keeps its state on the instance, so that tests share nothing and could run in
parallel. A test builds the double it steers or inspects and passes it to the worker
(``Worker(backends={"x": double})``, ``run_worker(backends=...)``). The doubles that a worker
subprocess builds from settings (:class:`GateBackend`, :class:`FlakyRedisBackend`) get what they
need through ``OPTIONS``.

Some implement only ``send()``, as backends written for 0.2.0 do, so the worker's tests also go
through the base class's ``send_batch()`` that loops over it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from django.utils import timezone

from django_broadcaster.backends.base import BaseBackend, Rejections
from django_broadcaster.backends.redis import RedisStreamBackend
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BackendUnavailable, EventRejected


class RecordingBackend(BaseBackend):
    """A double that notes the id of each event it is asked to send, in :attr:`calls`."""

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        #: The ids of the events this backend was called with, in order.
        self.calls: list[str] = []

    def record(self, events: Sequence[CloudEvent]) -> None:
        """Note that the backend was called with ``events``."""
        self.calls.extend(str(event.id) for event in events)


class RejectingBackend(RecordingBackend):
    """Refuse events whose data has ``"reject": true``; accept the rest."""

    def send(self, event: CloudEvent) -> None:
        self.record([event])
        if isinstance(event.data, dict) and event.data.get("reject"):
            raise EventRejected("too large for this broker", destination=self.alias)


class UnavailableBackend(RecordingBackend):
    """Fail every batch as if the broker were down, while :attr:`down` is true."""

    def __init__(self, alias: str, *, down: bool = True, **options: Any) -> None:
        super().__init__(alias, **options)
        #: Whether the broker is down; a test sets it to ``False`` to bring it back.
        self.down = down

    def send(self, event: CloudEvent) -> None:
        self.record([event])
        if self.down:
            raise BackendUnavailable("connection refused", destination=self.alias)


class GateBackend(BaseBackend):
    """Hold each batch until the test opens the gate, to stop a worker in the middle of one.

    On each batch it creates ``<directory>/started``, then blocks reading the FIFO
    ``<directory>/gate`` until the test writes to it, then accepts the batch and appends the event
    ids to ``<directory>/delivered``.
    """

    def __init__(self, alias: str, *, directory: str, **options: Any) -> None:
        super().__init__(alias, **options)
        self.directory = directory

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        root = Path(self.directory)
        (root / "started").touch()
        with open(root / "gate") as gate:
            gate.read()
        with open(root / "delivered", "a") as delivered:
            delivered.writelines(f"{event.id}\n" for event in events)
        return {}


class FlakyRedisBackend(RedisStreamBackend):
    """A real Redis stream backend that refuses a random ``failure_rate`` of the events."""

    def __init__(self, alias: str, *, failure_rate: float, **options: Any) -> None:
        super().__init__(alias, **options)
        self.failure_rate = failure_rate

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        refused = {
            str(event.id): EventRejected("random failure", destination=self.alias)
            for event in events
            if random.random() < self.failure_rate
        }
        accepted = [event for event in events if str(event.id) not in refused]
        return {**super().send_batch(accepted), **refused}


class SlowlyUnavailableBackend(RecordingBackend):
    """Take ``seconds`` to find the broker unreachable, like a connection timeout."""

    def __init__(self, alias: str, *, seconds: float, **options: Any) -> None:
        super().__init__(alias, **options)
        self.seconds = seconds
        #: When the last call gave up (``django.utils.timezone.now()``).
        self.gave_up_at: datetime | None = None

    def send(self, event: CloudEvent) -> None:
        self.record([event])
        time.sleep(self.seconds)  # stands for a socket timeout inside a client library
        self.gave_up_at = timezone.now()
        raise BackendUnavailable("timed out", destination=self.alias)


class HangingBackend(RecordingBackend):
    """Hold every batch until the test sets :attr:`release`, then end as ``then`` says.

    ``then`` is ``"accept"`` or ``"unavailable"``. Stands for a broker that hangs (a frozen
    process, a dropped network) and answers, or times out, much later. Set :attr:`release` before
    the test ends, or the worker's thread waits forever.
    """

    def __init__(
        self, alias: str, *, then: Literal["accept", "unavailable"] = "accept", **options: Any
    ) -> None:
        super().__init__(alias, **options)
        if then not in ("accept", "unavailable"):
            raise ValueError(f'then must be "accept" or "unavailable", got {then!r}')
        self.then = then
        #: Set by the test to let the held batches end.
        self.release = threading.Event()

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        self.record(events)
        self.release.wait()
        if self.then == "unavailable":
            raise BackendUnavailable("timed out at last", destination=self.alias)
        return {}


class FixableBackend(RecordingBackend):
    """Refuse every event, naming its ``order``, while :attr:`refusing`; then accept them.

    :attr:`accepted` holds the ids of the events it took, in order, so a test can count them.
    """

    def __init__(self, alias: str, *, refusing: bool = True, **options: Any) -> None:
        super().__init__(alias, **options)
        #: Whether it refuses; a test sets it to ``False`` once "the bug is fixed".
        self.refusing = refusing
        self.accepted: list[str] = []

    def send(self, event: CloudEvent) -> None:
        self.record([event])
        if self.refusing:
            order = event.data.get("order") if isinstance(event.data, dict) else None
            raise EventRejected(f"order {order} missing", destination=self.alias)
        self.accepted.append(str(event.id))
