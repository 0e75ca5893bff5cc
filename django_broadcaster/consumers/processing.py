"""Handle one received message: run the registry's handlers once, retry, or give up.

The rules, for every transport:

* An event's handlers all run in one transaction with its inbox entry (see :mod:`.inbox`), so
  they succeed or fail together and a duplicate runs none of them.
* A failure is retried in place, with a capped, jittered backoff, up to ``max_attempts``
  attempts; the consumer does not move past the message meanwhile, so order is kept.
* Then the event becomes a dead letter: a ``failed`` inbox entry with the error and the event
  as CloudEvents JSON. Only then is the message acknowledged. When even that write fails (the
  database is down), the handlers are tried again later instead: an outage never turns good
  events into dead letters. Nor does an attempt that failed because the database could not be
  reached (``OperationalError``, ``InterfaceError``): it waits and is tried again, however
  often, since the database may be back by the time a dead letter would be written.
* A message that cannot be decoded is a dead letter at once, keyed by where it was read
  (``redis:<stream>`` or ``kafka:<topic>`` and its position), since it has no usable id.
* An event no handler wants is acknowledged without an inbox entry.

A database error about the data itself (``DataError``, ``IntegrityError``) is not an outage: it
would fail the same way forever, and hold up every message behind this one. A dead letter the
database refuses under the event's key is kept under the message's position instead; one it
refuses even there is logged with its payload, and the message acknowledged.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
)

from ..events import CloudEvent
from ..formats import to_structured_json
from ..predicates import Predicate
from ..registry import EventRegistry, Handler
from ..retry import RetryPolicy
from ..stopping import StopNow
from .inbox import keep_dead_letter, process_once

logger = logging.getLogger(__name__)

#: Database errors caused by what is written, not by the database: retrying cannot help.
DATA_ERRORS = (DataError, IntegrityError)


class Disposition(enum.Enum):
    """What became of a message; all but ``ABANDONED`` mean it may be acknowledged."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"
    ABANDONED = "abandoned"  # the consumer is stopping: leave the message for redelivery


@dataclass(frozen=True)
class Message:
    """One message as read from a broker, decoded as far as possible.

    ``origin`` and ``position`` say where it was read (``redis:orders`` and ``1700000000-0``);
    ``handle`` is whatever the transport needs to acknowledge it. ``event`` is ``None`` when the
    message could not be decoded; ``problem`` then says why and ``raw`` holds it as text.
    """

    origin: str
    position: str
    handle: Any
    event: CloudEvent | None
    problem: str = ""
    raw: str = ""


class Processor:
    """Run each message's handlers from ``registry`` once, under ``policy`` (see the module).

    Waits between attempts end early when ``stopping`` is set; the message is then abandoned.
    """

    def __init__(
        self,
        registry: EventRegistry,
        policy: RetryPolicy,
        stopping: threading.Event,
        using: str | None = None,
    ) -> None:
        self.registry, self.policy, self.stopping, self.using = registry, policy, stopping, using

    def process(self, message: Message) -> Disposition:
        """Handle ``message`` and return its outcome. Never raises for a handler's error."""
        event = message.event
        if event is None:
            return self._until_done(
                lambda attempt: self._dead_letter_at(message, message.problem, message.raw)
            )
        handlers = self.registry.handlers_for(event.event_type)
        if not handlers:
            return Disposition.IGNORED
        return self._until_done(lambda attempt: self._attempt(message, event, handlers, attempt))

    def _until_done(self, step: Callable[[int], Disposition | None]) -> Disposition:
        """Call ``step(attempt)`` until it returns an outcome, backing off in between."""
        attempt = 1
        while (outcome := step(attempt)) is None:
            if self.stopping.wait(self.policy.delay(attempt)):
                return Disposition.ABANDONED
            attempt += 1
        return outcome

    def _attempt(
        self, message: Message, event: CloudEvent, handlers: Mapping[str, Handler], attempt: int
    ) -> Disposition | None:
        """Run the handlers once; return the outcome, or ``None`` to try again later."""
        try:
            handle = all_handlers(handlers, self.registry.predicates)
            fresh = process_once(event, handle, using=self.using)
        except StopNow:
            raise
        except BaseException as exc:  # a handler's, whatever it raised: SystemExit included
            if is_outage(exc):
                logger.warning("Event %s waits: the database is unavailable (%s).", event.id, exc)
                _discard_broken_connections()
                return None  # an outage, not the handler's failure: never a dead letter
            logger.warning(
                "Event %s (%s) failed, attempt %d of %d: %s",
                *(event.id, event.event_type, attempt, self.policy.max_attempts, exc),
                exc_info=True,
            )
            _discard_broken_connections()
            if not self.policy.gives_up(attempt):
                return None
            return self._dead_letter(message, event, exc, attempt)
        return Disposition.PROCESSED if fresh else Disposition.DUPLICATE

    def _dead_letter(
        self, message: Message, event: CloudEvent, error: BaseException, attempts: int
    ) -> Disposition | None:
        """Record ``event`` as failed; return ``None`` if the database would not take it now."""
        payload = _payload(event)
        try:
            recorded = keep_dead_letter(
                source=event.source,
                event_id=str(event.id),
                event_type=event.event_type,
                error=describe(error),
                payload=payload,
                attempts=attempts,
                using=self.using,
            )
        except DATA_ERRORS as exc:
            problem = f"{describe(error)}; refused under its own key: {describe(exc)}"
            return self._dead_letter_at(message, problem, payload, event.event_type)
        except DatabaseError as exc:
            logger.warning("Cannot record event %s as failed (%s); will retry it.", event.id, exc)
            _discard_broken_connections()
            return None
        if not recorded:  # another consumer handled it meanwhile
            return Disposition.DUPLICATE
        logger.error("Gave up on event %s (%s): %s", event.id, event.event_type, error)
        return Disposition.DEAD_LETTERED

    def _dead_letter_at(
        self, message: Message, problem: str, payload: str, event_type: str = ""
    ) -> Disposition | None:
        """Record ``message`` as failed under its position; ``None`` if the database is down."""
        try:
            keep_dead_letter(
                source=message.origin,
                event_id=message.position,
                event_type=event_type,
                error=problem,
                payload=payload,
                using=self.using,
            )
        except DATA_ERRORS as exc:
            logger.critical(
                "Dropped the message at %s %s: the database refuses even its dead letter (%s). "
                "It failed with %s; payload: %s",
                *(message.origin, message.position, exc, problem, payload),
            )
            return Disposition.DEAD_LETTERED
        except DatabaseError as exc:
            logger.warning("Cannot record a dead letter (%s); will retry.", exc)
            _discard_broken_connections()
            return None
        logger.error("Dead letter at %s %s: %s", message.origin, message.position, problem)
        return Disposition.DEAD_LETTERED


def all_handlers(handlers: Mapping[str, Handler], predicates: Mapping[str, Predicate]) -> Handler:
    """Return a handler that calls each of ``handlers`` in turn, but those whose predicate (in
    ``predicates``, by name) does not choose the event. The inbox keeps no record per handler,
    so a predicate is asked at each attempt; one that raises fails the attempt."""

    def call_all(event: CloudEvent) -> None:
        for name, handler in handlers.items():
            predicate = predicates.get(name)
            if predicate is None or predicate(event):
                handler(event)

    return call_all


def _payload(event: CloudEvent) -> str:
    """Return ``event`` as CloudEvents JSON, for its dead letter."""
    try:
        return to_structured_json(event).decode()
    except UnicodeEncodeError:  # a lone surrogate in the data: keep it as a JSON escape
        return to_structured_json(event, ascii_only=True).decode()


def describe(error: BaseException) -> str:
    """Return ``error`` as the inbox records it: ``"ErrorClass: message"``."""
    return f"{type(error).__name__}: {error}"


def is_outage(error: BaseException) -> bool:
    """Return whether ``error`` says the database could not be reached, rather than refused.

    Django raises ``OperationalError`` or ``InterfaceError`` for a connection that could not be
    made or was lost. Decided by type, not by the connection's state afterwards: Django may
    have connected again by then, if the server is back.
    """
    return isinstance(error, (OperationalError, InterfaceError))


def _discard_broken_connections() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()
