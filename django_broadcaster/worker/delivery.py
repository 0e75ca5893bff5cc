"""Deliver a batch of claimed rows to every destination, and say what happened to each row.

Nothing here writes to the outbox; :mod:`.recording` does, from the :class:`Outcome` values.
Each backend gets the batch's events in one ``send_batch`` call, made by its courier
(:mod:`.couriers`) on a thread of its own, so backends are sent to side by side and a hung one
holds up the others only until its deadline. Each local handler is called once per event, here,
in its own savepoint, so a failing handler rolls back only its own writes.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..claims import ClaimedEvent
from ..events import CloudEvent
from ..followups import published_so_far, record_handler_success
from ..registry import EventRegistry, Handler
from ..tracing import delivery_span
from .couriers import Courier, Verdict

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one delivery attempt did for one claimed row.

    ``delivered`` lists every destination that has the event (earlier attempts included);
    ``errors`` maps each destination that refused it to why (these spend a retry);
    ``unavailable`` maps each destination that could not be reached to why, and
    ``deferred_until`` says when to try again (an outage spends no retry); ``expired`` says the
    event's ``expires_at`` had passed, so it went nowhere.
    """

    row: ClaimedEvent
    delivered: list[str]
    errors: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    deferred_until: datetime | None = None
    expired: bool = False

    @property
    def event(self) -> CloudEvent:
        """Return the event being delivered."""
        return self.row.event

    @property
    def complete(self) -> bool:
        """Return whether every destination now has the event."""
        return not self.errors and not self.unavailable and not self.expired

    def defer(self, until: datetime, destination: str, reason: str) -> None:
        """Note that ``destination`` was unavailable, so the row waits until ``until``."""
        self.deferred_until = max(until, self.deferred_until or until)
        self.unavailable[destination] = reason


def deliver(
    rows: Sequence[ClaimedEvent],
    couriers: Mapping[str, Courier],
    registry: EventRegistry,
    meanwhile: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Deliver ``rows`` to their backends and handlers; return one :class:`Outcome` per row.

    Every backend's share goes out at once, each on its courier's thread, while the handlers run
    here, then ``meanwhile()`` if given (the worker claims its next batch there); then each
    backend's verdict is awaited (at most until its deadline). Rows whose ``expires_at`` has
    passed go nowhere and come back marked ``expired``.
    """
    now = timezone.now()
    outcomes = [
        Outcome(
            row,
            list(row.delivered),
            expired=row.expires_at is not None and row.expires_at <= now,
        )
        for row in rows
    ]
    live = [outcome for outcome in outcomes if not outcome.expired]
    with delivery_span([outcome.event for outcome in live]):
        calls = []
        for alias, courier in couriers.items():
            pending = [o for o in live if _needs_backend(o, alias)]
            if pending:
                calls.append((courier, courier.start([o.event for o in pending]), pending))
        handlers_for = functools.cache(registry.handlers_for)  # once per event type
        for outcome in live:
            _call_handlers(outcome, handlers_for(outcome.event.event_type))
        if meanwhile is not None:
            meanwhile()
        for courier, call, pending in calls:
            _apply_verdict(courier.alias, courier.finish(call), pending)
    return outcomes


def _needs_backend(outcome: Outcome, alias: str) -> bool:
    return alias not in outcome.delivered and outcome.row.wants_backend(alias)


def _apply_verdict(alias: str, verdict: Verdict, outcomes: list[Outcome]) -> None:
    if verdict.unavailable_until is not None:
        for outcome in outcomes:
            outcome.defer(verdict.unavailable_until, alias, verdict.reason)
        return
    for outcome in outcomes:
        error = verdict.error_for(outcome.event.id or "")
        if error is None:
            outcome.delivered.append(alias)
        else:
            outcome.errors[alias] = _describe(error)


def _call_handlers(outcome: Outcome, handlers: Mapping[str, Handler]) -> None:
    for name, handler in handlers.items():
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
