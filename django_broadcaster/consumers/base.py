"""The consumer loop shared by the transports: fetch, process, acknowledge, repeat.

A message is acknowledged (Redis ``XACK``, Kafka offset commit) only after the transaction that
handled it has committed, so a crash in between redelivers it, and the inbox skips it. The
reverse order could lose an event; this one only costs a duplicate, which the inbox absorbs.
A subclass talks to its broker through :meth:`BaseConsumer.open`, :meth:`~BaseConsumer.fetch`,
:meth:`~BaseConsumer.acknowledge`, :meth:`~BaseConsumer.is_idle` and :meth:`~BaseConsumer.close`.

When the broker cannot be reached (``open()`` or ``fetch()`` raise one of the subclass's
``broker_errors``), at start or later, the loop waits and tries again, with a capped backoff. It
logs a warning when the broker goes, and one line when it is back: not one per attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from django.db import close_old_connections

from ..conf import get_settings
from ..exceptions import BroadcasterImproperlyConfigured
from ..registry import EventRegistry, consumer_registry, event_registry
from ..retry import RetryPolicy, backoff_delay
from ..stopping import GracefulStop, StopNow
from .processing import Disposition, Message, Processor

logger = logging.getLogger(__name__)

BROKER_BACKOFF = (timedelta(seconds=1), timedelta(seconds=30))


@dataclass
class ConsumerStats:
    """Running totals of outcomes since the consumer started."""

    processed: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0

    def add(self, outcome: Disposition) -> None:
        """Count one acknowledged message's outcome."""
        name = {Disposition.DUPLICATE: "duplicates"}.get(outcome, outcome.value)
        setattr(self, name, getattr(self, name) + 1)

    def __str__(self) -> str:
        return (
            f"processed {self.processed}, duplicates {self.duplicates}, "
            f"ignored {self.ignored}, dead letters {self.dead_lettered}"
        )


def default_registry() -> EventRegistry:
    """Return :data:`~django_broadcaster.registry.consumer_registry`, the consumers' handlers.

    Raises :class:`~django_broadcaster.exceptions.BroadcasterImproperlyConfigured` when it is
    empty while ``event_registry`` is not: 0.2.0's consumers read ``event_registry``, and a
    project upgraded without moving its consumer handlers would otherwise acknowledge every
    event as ignored.
    """
    local = event_registry.destinations()
    if consumer_registry.destinations() or not local:
        return consumer_registry
    raise BroadcasterImproperlyConfigured(
        f"No consumer handlers: consumer_registry is empty, and event_registry's {len(local)} "
        "handlers are local handlers, which the outbox worker runs for the events this project "
        "publishes. Register the handlers of received events with "
        "@consumer_registry.register(...) (from django_broadcaster.registry); to run "
        "event_registry's handlers on received events as 0.2.0 did, and twice for events this "
        "project publishes, pass it explicitly (--registry "
        "django_broadcaster.registry.event_registry, or registry=event_registry)."
    )


class BaseConsumer:
    """Process messages from a broker until stopped; see the module docstring for the order.

    ``burst`` makes :meth:`run` return once :meth:`is_idle` says nothing more is coming.
    ``registry`` supplies the handlers (by default ``consumer_registry``: see
    :func:`default_registry`); ``policy`` bounds retries; ``using`` is the database alias of the
    inbox (the router's choice by default).
    """

    #: Errors meaning the broker cannot be reached now: the loop waits and tries again.
    broker_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(
        self,
        *,
        registry: EventRegistry | None = None,
        policy: RetryPolicy | None = None,
        burst: bool = False,
        using: str | None = None,
    ) -> None:
        self.burst = burst
        self.stats = ConsumerStats()
        self._stopping = threading.Event()
        self._broker_failures = 0
        self._broker_lost_at = 0.0  # time.monotonic() of the first failure in a row
        self._opened = False
        self._signals = GracefulStop(self._stopping, self.stop)
        self.processor = Processor(
            default_registry() if registry is None else registry,
            policy or RetryPolicy(),
            self._stopping,
            using,
        )

    def open(self) -> None:
        """Connect to the broker; called by :meth:`run` until it does not raise a broker error."""
        raise NotImplementedError(f"{type(self).__name__} must implement open().")

    def fetch(self) -> list[Message]:
        """Return the next messages, waiting a little if there are none; may return ``[]``."""
        raise NotImplementedError(f"{type(self).__name__} must implement fetch().")

    def acknowledge(self, messages: list[Message]) -> None:
        """Tell the broker that ``messages`` are done (a prefix of what :meth:`fetch` gave)."""
        raise NotImplementedError(f"{type(self).__name__} must implement acknowledge().")

    def is_idle(self) -> bool:
        """Return whether the last empty :meth:`fetch` means nothing more is coming (burst)."""
        return True

    def close(self) -> None:
        """Release the broker connection; safe to call twice."""

    def run(self) -> ConsumerStats:
        """Process messages until stopped, or until idle in burst mode; return the totals."""
        logger.info("Consumer started: %r.", self)
        try:
            while not self._stopping.is_set() and self._cycle():
                pass
        except StopNow:
            logger.warning("Stopped at once; the message in hand will be redelivered.")
        finally:
            self._signals.cancel_timer()
            self.close()
        logger.info("Consumer stopped: %s.", self.stats)
        return self.stats

    def stop(self) -> None:
        """Ask the loop to stop once the message in hand is done and acknowledged."""
        self._stopping.set()

    def install_signal_handlers(self, grace: timedelta | None = None) -> None:
        """Make SIGTERM and SIGINT stop gracefully (call from the main thread).

        The message in hand is finished and acknowledged. A second signal, or ``grace``
        running out (default ``BROADCASTER["SHUTDOWN_TIMEOUT"]``), stops at once.
        """
        self._signals.install(
            grace if grace is not None else get_settings().shutdown_timeout, "message"
        )

    def _cycle(self) -> bool:
        """Fetch and process one batch; return ``False`` when the loop should end."""
        close_old_connections()
        try:
            if not self._opened:
                self.open()
                self._opened = True
            messages = self.fetch()
        except self.broker_errors as exc:
            self._wait_for_broker(exc)
            return True
        self._broker_is_back()
        if not messages:
            return not (self.burst and self.is_idle())
        self._process(messages)
        return True

    def _process(self, messages: list[Message]) -> None:
        done: list[Message] = []
        for message in messages:
            if self._stopping.is_set():
                break
            outcome = self.processor.process(message)
            if outcome is Disposition.ABANDONED:
                break
            self.stats.add(outcome)
            done.append(message)
        if done:
            self._acknowledge(done)

    def _acknowledge(self, messages: list[Message]) -> None:
        try:
            self.acknowledge(messages)
        except self.broker_errors as exc:
            # Handled and committed already: the broker redelivers them, the inbox skips them.
            logger.warning("Could not acknowledge %d messages: %s", len(messages), exc)

    def _wait_for_broker(self, error: Exception) -> None:
        self._broker_failures += 1
        delay = backoff_delay(self._broker_failures, *BROKER_BACKOFF).total_seconds()
        if self._broker_failures == 1:
            self._broker_lost_at = time.monotonic()
            logger.warning(
                "Broker unavailable (%s): waiting for it, trying again at most every %.0f s.",
                *(error, BROKER_BACKOFF[1].total_seconds()),
            )
        logger.debug("Broker still unavailable (%s); next try in %.1f s.", error, delay)
        self._stopping.wait(delay)

    def _broker_is_back(self) -> None:
        if self._broker_failures:
            down = time.monotonic() - self._broker_lost_at
            logger.warning("Broker reachable again, after %.0f s unavailable.", down)
            self._broker_failures = 0
