"""Outbox row ids: time-ordered UUIDs (version 7), so new rows land at the end of the index.

Migrations refer to :func:`new_event_id` as ``django_broadcaster.models.new_event_id``, which
re-exports it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid


class _Uuid7Clock:
    """Hand out (millisecond, counter) pairs that only ever increase within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (0, 0)

    def tick(self) -> tuple[int, int]:
        with self._lock:
            milliseconds = time.time_ns() // 1_000_000
            last_ms, last_counter = self._last
            if milliseconds <= last_ms:  # same millisecond, or the clock stepped back
                milliseconds, counter = last_ms, last_counter + 1
                if counter >= 1 << 12:
                    milliseconds, counter = last_ms + 1, 0
            else:
                counter = 0
            self._last = (milliseconds, counter)
            return self._last


_clock = _Uuid7Clock()


def new_event_id() -> uuid.UUID:
    """Return a new time-ordered UUID (version 7, RFC 9562).

    Ids made by one process increase strictly (a 12-bit counter orders those of one millisecond),
    so new rows land at the end of the index and events of one publisher sort in publish order.
    """
    milliseconds, counter = _clock.tick()
    value = (milliseconds & (2**48 - 1)) << 80 | 0x7 << 76 | counter << 64
    value |= 0b10 << 62 | int.from_bytes(os.urandom(8), "big") >> 2  # variant, 62 random bits
    return uuid.UUID(int=value)
