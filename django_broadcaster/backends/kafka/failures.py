"""What went wrong between a Kafka backend and its cluster, said the same way by both clients.

Each client module maps its errors to a :class:`Problem` by exception type (kafka-python) or
error code (librdkafka), never by their text: the *kind* says what failed, and so what to look
at; the message adds the client's own words, which name the broker. Every such problem makes
the backend unavailable (the events wait, no retry is spent): only an error about one message
refuses an event. :class:`ErrorLog` logs a client's errors once per change of state, where the
clients themselves log each reconnection attempt (librdkafka about 20 lines a second).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

#: The kinds of problem, each the start of the message that reports it.
UNREACHABLE: Final = "broker unreachable"
AUTHENTICATION: Final = "authentication failed"
NOT_AUTHORIZED: Final = "not authorized"
TLS: Final = "TLS handshake failed"
UNKNOWN_TOPIC: Final = "unknown topic"
NO_ANSWER: Final = "no answer"

#: Where client errors are logged, once per change of state (see :class:`ErrorLog`), and
#: librdkafka's own log lines.
client_logger = logging.getLogger("django_broadcaster.backends.kafka.client")


@dataclass(frozen=True)
class Problem:
    """What failed (``kind``, one of this module's constants) and the message that says so."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def problem(kind: str, detail: object) -> Problem:
    """Return the problem of ``kind``, described by the client's ``detail``."""
    return Problem(kind, f"{kind}: {detail}")


def no_answer(seconds: float, servers: str, detail: object = None) -> Problem:
    """Return the problem of brokers that gave no answer (slow, or not speaking as expected)."""
    more = f"; {detail}" if detail else ""
    return Problem(NO_ANSWER, f"{NO_ANSWER} within {seconds:g} s from {servers}{more}")


def unknown_topic(topic: str, detail: object) -> Problem:
    """Return the problem of a topic that does not exist, which the broker does not create."""
    return Problem(
        UNKNOWN_TOPIC,
        f"{UNKNOWN_TOPIC} {topic!r}: it does not exist and the broker does not create it "
        f"({detail})",
    )


class ErrorLog:
    """Log a client's errors once per state: the first, a count now and then, the recovery.

    Errors with the same ``key`` (a librdkafka error code, a kafka-python exception type) are
    the same state: the first is logged at WARNING, the next ones are counted and logged as
    "still failing (N times)" at most every ``every_s`` seconds. :meth:`recovered` logs once,
    at INFO, that the client works again, and starts afresh. Messages go through ``scrub``
    (which masks passwords). Safe to call from the client's threads.
    """

    def __init__(
        self,
        label: str,
        scrub: Callable[[object], str] = str,
        *,
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.scrub, self.every_s, self.clock = label, scrub, every_s, clock
        self._lock = threading.Lock()
        self._seen: dict[Hashable, tuple[int, float]] = {}  # key: (count, last logged at)

    def error(self, key: Hashable, message: object) -> None:
        """Note an error of state ``key``, and log it if it is the first or due a count."""
        now = self.clock()
        with self._lock:
            count, logged_at = self._seen.get(key, (0, now))
            count += 1
            due = count == 1 or now - logged_at >= self.every_s
            self._seen[key] = (count, now if due else logged_at)
        if count == 1:
            client_logger.warning("%s: %s", self.label, self.scrub(message))
        elif due:
            client_logger.warning(
                "%s: still failing (%d times): %s", self.label, count, self.scrub(message)
            )

    def recovered(self) -> None:
        """Log that the client works again, if it had failed; forget the errors."""
        with self._lock:
            total = sum(count for count, _ in self._seen.values())
            self._seen.clear()
        if total:
            client_logger.info("%s: recovered after %d errors.", self.label, total)
