"""Backends that misbehave on purpose, for tests of the worker's failure handling.

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
from typing import Any

from django.utils import timezone

from django_broadcaster.backends.base import BaseBackend, Rejections
from django_broadcaster.backends.redis import RedisStreamBackend
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BackendUnavailable, EventRejected

#: Calls to every test double, as (alias, event id), in order.
calls: list[tuple[str, str]] = []


class RejectingBackend(BaseBackend):
    """Refuse events whose data has ``"reject": true``; accept the rest."""

    def send(self, event: CloudEvent) -> None:
        calls.append((self.alias, str(event.id)))
        if isinstance(event.data, dict) and event.data.get("reject"):
            raise EventRejected("too large for this broker", destination=self.alias)


class UnavailableBackend(BaseBackend):
    """Fail every batch as if the broker were down, while ``down`` is true."""

    down = True

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)

    def send(self, event: CloudEvent) -> None:
        calls.append((self.alias, str(event.id)))
        if UnavailableBackend.down:
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


class SlowlyUnavailableBackend(BaseBackend):
    """Take ``seconds`` to find the broker unreachable, like a connection timeout."""

    def __init__(self, alias: str, *, seconds: float, **options: Any) -> None:
        super().__init__(alias, **options)
        self.seconds = seconds

    #: When the last call gave up (``django.utils.timezone.now()``).
    gave_up_at: datetime | None = None

    def send(self, event: CloudEvent) -> None:
        calls.append((self.alias, str(event.id)))
        time.sleep(self.seconds)  # stands for a socket timeout inside a client library
        SlowlyUnavailableBackend.gave_up_at = timezone.now()
        raise BackendUnavailable("timed out", destination=self.alias)


class HangingBackend(BaseBackend):
    """Hold every batch until the test sets ``release``, then end as ``then`` says.

    ``then`` is ``"accept"`` or ``"unavailable"``. Stands for a broker that hangs (a frozen
    process, a dropped network) and answers, or times out, much later.
    """

    release = threading.Event()
    then = "accept"

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        calls.extend((self.alias, str(event.id)) for event in events)
        HangingBackend.release.wait()
        if HangingBackend.then == "unavailable":
            raise BackendUnavailable("timed out at last", destination=self.alias)
        return {}
