"""Deliver a batch of claimed rows to every destination, and say what happened to each row.

Nothing here writes to the outbox; :mod:`.recording` does, from the :class:`Outcome` values.
Each backend gets the batch's events in one ``send_batch`` call; each local handler is called once
per event, in its own savepoint, so a failing handler rolls back only its own writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..backends.base import BaseBackend
from ..events import CloudEvent
from ..exceptions import BackendUnavailable
from ..followups import published_so_far, record_handler_success
from ..models import OutboxEvent
from ..registry import EventRegistry
from ..tracing import delivery_span
from .breaker import CircuitBreaker

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one delivery attempt did for one row.

    ``delivered`` lists every destination that has the event (earlier attempts included);
    ``errors`` maps each destination that refused it to why (these spend a retry);
    ``unavailable`` maps each destination that could not be reached to why, and
    ``deferred_until`` says when to try again (an outage spends no retry); ``expired`` says the
    event's ``expires_at`` had passed, so it went nowhere.
    """

    row: OutboxEvent
    event: CloudEvent
    delivered: list[str]
    errors: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    deferred_until: datetime | None = None
    expired: bool = False

    @property
    def complete(self) -> bool:
        """Return whether every destination now has the event."""
        return not self.errors and not self.unavailable and not self.expired

    def defer(self, until: datetime, destination: str, reason: str) -> None:
        """Note that ``destination`` was unavailable, so the row waits until ``until``."""
        self.deferred_until = max(until, self.deferred_until or until)
        self.unavailable[destination] = reason


def deliver(
    rows: Sequence[OutboxEvent],
    backends: Mapping[str, BaseBackend],
    breakers: Mapping[str, CircuitBreaker],
    registry: EventRegistry,
) -> list[Outcome]:
    """Deliver ``rows`` to their backends and handlers; return one :class:`Outcome` per row.

    Rows whose ``expires_at`` has passed go nowhere and come back marked ``expired``.
    """
    now = timezone.now()
    outcomes = [
        Outcome(
            row,
            row.as_cloud_event(),
            list(row.delivered or []),
            expired=row.expires_at is not None and row.expires_at <= now,
        )
        for row in rows
    ]
    live = [outcome for outcome in outcomes if not outcome.expired]
    with delivery_span([outcome.event for outcome in live]):
        for alias, backend in backends.items():
            pending = [o for o in live if _needs_backend(o, alias)]
            if pending:
                _send_to_backend(alias, backend, breakers[alias], pending)
        for outcome in live:
            _call_handlers(outcome, registry)
    return outcomes


def _needs_backend(outcome: Outcome, alias: str) -> bool:
    return alias not in outcome.delivered and outcome.row.wants_backend(alias)


def _send_to_backend(
    alias: str, backend: BaseBackend, breaker: CircuitBreaker, outcomes: list[Outcome]
) -> None:
    now = timezone.now()
    rejected: Mapping[str, BaseException]
    if breaker.is_open(now):
        assert breaker.open_until is not None
        for outcome in outcomes:
            outcome.defer(breaker.open_until, alias, "backend paused after an outage")
        return
    try:
        backend.open()
        rejected = backend.send_batch([outcome.event for outcome in outcomes])
    except BackendUnavailable as exc:
        # A failure can take as long as the backend's timeout: pause from when it ended.
        until = breaker.record_failure(timezone.now(), exc)
        for outcome in outcomes:
            outcome.defer(until, alias, f"unavailable: {exc}")
        return
    except Exception as exc:  # a bug or an unexpected error: every event of the call failed
        logger.exception("Backend %r failed on a batch of %d events", alias, len(outcomes))
        rejected = {outcome.event.id or "": exc for outcome in outcomes}
    breaker.record_success()
    for outcome in outcomes:
        error = rejected.get(outcome.event.id or "")
        if error is None:
            outcome.delivered.append(alias)
        else:
            outcome.errors[alias] = _describe(error)


def _call_handlers(outcome: Outcome, registry: EventRegistry) -> None:
    for name, handler in registry.handlers_for(outcome.event.event_type).items():
        if name in outcome.delivered:
            continue
        published_before = published_so_far()
        try:
            with transaction.atomic():
                handler(outcome.event)
                if published_so_far() != published_before:  # follow-ups commit with the record
                    record_handler_success(outcome.row, [*outcome.delivered, name])
        except Exception as exc:
            logger.warning("Handler %s failed on event %s: %s", name, outcome.event.id, exc)
            outcome.errors[name] = _describe(exc)
        else:
            outcome.delivered.append(name)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
