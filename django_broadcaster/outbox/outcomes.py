"""Recording what a delivery attempt did to each claimed row: every such write of the worker.

:func:`prepare` decides what each row becomes (:func:`~django_broadcaster.retry.decide`) and its
new ``delivery``; :meth:`Record.write` writes that: rows delivered everywhere in one UPDATE per
shared ``delivery``, the others in one ``bulk_update``. :func:`record_handler_success` writes a
handler's success in the handler's own transaction. Every write is guarded by the lease token, so
a worker whose lease ran out (its rows taken over by another) changes nothing.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connections, router
from django.utils import timezone

from ..conf import BroadcasterSettings
from ..events import CloudEvent, format_timestamp
from ..exceptions import LeaseLost
from ..handler_names import HANDLER_PREFIX
from ..retry import decide, held_until
from ..routing import retry_backoff
from ..signals import event_failed, event_published
from ..telemetry import Tally
from .dead_letters import settle
from .leases import ClaimedEvent, atomic_unless_one_statement
from .models import (
    RELEASED,
    DestinationEntry,
    DestinationState,
    OutboxEvent,
    Status,
    outbox_field,
)
from .waiting import wake

#: A row's ``delivery``: each destination's entry, by name.
Delivery = Mapping[str, DestinationEntry]
#: The columns written for a row that did not reach every destination, its lease given back.
UNFINISHED_FIELDS = ["status", "scheduled_at", "retry_count", "last_error", "delivery", *RELEASED]


@dataclass
class Outcome:
    """What one delivery attempt did for one claimed row.

    ``delivered`` lists every destination that has the event (earlier attempts first); ``errors``
    maps each destination that refused it to why (these spend a retry); ``unavailable`` maps each
    destination not reached to why (``untried``: those not even called, their breaker open), and
    ``deferred_until`` says when to try again (an outage spends no retry); ``expired`` says the
    event's ``expires_at`` had passed, so it went nowhere.
    """

    row: ClaimedEvent
    delivered: list[str]
    errors: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    untried: set[str] = field(default_factory=set)
    deferred_until: datetime | None = None
    expired: bool = False

    @property
    def event(self) -> CloudEvent:
        """Return the event being delivered."""
        return self.row.event

    @property
    def complete(self) -> bool:
        """Return whether every destination now has the event."""
        done = not self.errors and not self.unavailable and not self.expired
        return done and self.row.retry_count <= self.row.max_retries  # else dead letters went

    @property
    def newly_delivered(self) -> list[str]:
        """Return the destinations that took the event in this attempt."""
        return self.delivered[len(self.row.delivered) :]

    @property
    def came_back(self) -> list[str]:
        """Return the destinations that took the event now, having been unavailable to it."""
        prior, unavailable = self.row.delivery, str(DestinationState.UNAVAILABLE)
        return [n for n in self.newly_delivered if prior.get(n, {}).get("state") == unavailable]

    @property
    def held(self) -> bool:
        """Return whether only paused backends, not even called, stand between the event and done.

        The row then waits past their trial, until one is back (:mod:`.waiting`).
        """
        paused = {name for name in self.untried if not name.startswith(HANDLER_PREFIX)}
        return bool(self.unavailable) and not self.errors and self.unavailable.keys() <= paused

    def defer(self, until: datetime, destination: str, reason: str, tried: bool = True) -> None:
        """Note that ``destination`` was unavailable, so the row waits until ``until``."""
        self.deferred_until = max(until, self.deferred_until or until)
        self.unavailable[destination] = reason
        if not tried:
            self.untried.add(destination)

    def delivery(self, at: str, *, reached_now: Sequence[str] = ()) -> dict[str, DestinationEntry]:
        """Return the row's ``delivery`` after this attempt, which ended at ``at``.

        ``reached_now`` adds destinations that have the event but are not in ``delivered`` yet.
        """
        prior = self.row.delivery
        entries = dict(prior)
        for name in [*self.newly_delivered, *reached_now]:
            entries[name] = _entry(prior, name, DestinationState.DELIVERED, at)
        for name, why in self.errors.items():
            entries[name] = _entry(prior, name, DestinationState.REJECTED, at, why)
        for name, why in self.unavailable.items():
            tried = name not in self.untried
            entries[name] = _entry(prior, name, DestinationState.UNAVAILABLE, at, why, tried)
        return entries


@dataclass(frozen=True)
class Record:
    """The writes that record one delivered batch, worked out and not yet run."""

    token: UUID
    now: datetime
    complete: list[Outcome]
    unfinished: list[tuple[Outcome, OutboxEvent]]
    failed: list[tuple[Outcome, OutboxEvent]]  # the unfinished rows that end failed
    tally: Tally
    back: frozenset[str] = frozenset()  # backends this batch found back: wake their waiting rows

    def write(self) -> Tally:
        """Run the writes, then send the signals; return :attr:`tally`.

        Raises ``DatabaseError`` if a write fails; the batch's rows then stay leased, and are
        delivered again when the lease runs out unless the write is tried again before.
        """
        groups = _group_by_delivery(self.complete, format_timestamp(self.now))
        database = router.db_for_write(OutboxEvent)
        with atomic_unless_one_statement(database, len(groups) + bool(self.unfinished)):
            for delivery, ids in groups:
                mark_published(database, self.token, ids, delivery, self.now)
            if self.unfinished:
                leased = OutboxEvent.objects.using(database).filter(lease_token=self.token)
                leased.bulk_update([row for _, row in self.unfinished], UNFINISHED_FIELDS)
        if self.back:
            wake(self.back, self.now, database)
        _send_signals(self.complete, self.failed)
        return self.tally


def prepare(outcomes: Sequence[Outcome], token: UUID, config: BroadcasterSettings) -> Record:
    """Return the writes recording ``outcomes`` (of rows leased under ``token``), not yet run.

    What each row becomes (published, retried, deferred, failed or expired) is decided now.
    """
    now = timezone.now()
    complete = [o for o in outcomes if o.complete]
    tally = Tally(published=len(complete))
    unfinished = []
    for outcome in outcomes:
        if not outcome.complete:
            row, result = _unfinished_row(outcome, now, config)
            setattr(tally, result, getattr(tally, result) + 1)
            unfinished.append((outcome, row))
    failed = [(o, row) for o, row in unfinished if row.status == Status.FAILED]
    back = frozenset(name for outcome in outcomes for name in outcome.came_back)
    return Record(token, now, complete, unfinished, failed, tally, back)


def mark_published(
    database: str, token: UUID, ids: Sequence[UUID | str], delivery: Delivery, now: datetime
) -> int:
    """Mark the rows ``ids`` still leased under ``token`` published at ``now``; return how many.

    ``ids`` are the rows' ids, as UUIDs or as their text (a claimed event's ``id``); each gets
    ``delivery``; the lease is cleared.
    """
    changes = dict(
        status=Status.PUBLISHED, published_at=now, delivery=delivery, last_error="", **RELEASED
    )
    connection = connections[database]
    if connection.vendor != "postgresql":
        leased = OutboxEvent.objects.using(database).filter(lease_token=token, pk__in=ids)
        return int(leased.update(**changes))
    values = [outbox_field(name).get_db_prep_save(v, connection) for name, v in changes.items()]
    id_array = "{" + ",".join(map(str, ids)) + "}"  # one literal: psycopg dumps UUIDs one by one
    values += [outbox_field("lease_token").get_db_prep_value(token, connection), id_array]
    with connection.cursor() as cursor:
        cursor.execute(_published_statement(database, tuple(changes)), values)
        return int(cursor.rowcount)


def record_handler_success(outcome: Outcome, handler: str) -> None:
    """Store that ``handler`` has the event of ``outcome``, inside the handler's transaction.

    Raises :class:`~django_broadcaster.exceptions.LeaseLost` if the worker's lease on the row is
    gone, so that the caller's transaction (the handler's writes and follow-up events) rolls back.
    """
    row = outcome.row
    delivery = outcome.delivery(format_timestamp(timezone.now()), reached_now=[handler])
    leased = OutboxEvent.objects.filter(pk=row.pk, lease_token=row.lease_token)
    if not leased.update(delivery=delivery):
        raise LeaseLost(f"event {row.pk} is no longer held by this worker")


@functools.lru_cache(maxsize=16)
def _published_statement(database: str, columns: tuple[str, ...]) -> str:
    """Return the PostgreSQL UPDATE of :func:`mark_published`: set ``columns``, ids in an array."""
    quote = connections[database].ops.quote_name

    def column(name: str) -> str:
        return quote(str(outbox_field(name).column))

    assignments = ", ".join(f"{column(name)} = %s" for name in columns)
    return (
        f"UPDATE {quote(OutboxEvent._meta.db_table)} SET {assignments} "
        f"WHERE {column('lease_token')} = %s AND {column('id')} = ANY(%s::uuid[])"
    )


def _group_by_delivery(outcomes: Sequence[Outcome], at: str) -> list[tuple[Delivery, list[Any]]]:
    """Group row ids by their new ``delivery``: one UPDATE each.

    Rows that shared their ``delivery`` before (the claim shares equal values) and reached the
    same destinations share it after: most of a batch is one group. The ids are the events' ids.
    """
    groups: defaultdict[tuple[int, tuple[str, ...]], list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[id(outcome.row.delivery), tuple(outcome.delivered)].append(outcome)
    return [(group[0].delivery(at), [o.event.id for o in group]) for group in groups.values()]


def _entry(
    prior: Delivery, name: str, state: str, at: str, error: str = "", tried: bool = True
) -> DestinationEntry:
    attempts = prior.get(name, {}).get("attempts", 0) + tried
    entry: DestinationEntry = {"state": state, "attempts": attempts, "at": at}
    if error:
        entry["error"] = error
    return entry


def _unfinished_row(
    outcome: Outcome, now: datetime, config: BroadcasterSettings
) -> tuple[OutboxEvent, str]:
    """Return the row to write for an outcome that did not reach every destination, and why."""
    claimed = outcome.row
    row = OutboxEvent(
        id=claimed.pk,
        status=Status.PENDING,
        retry_count=claimed.retry_count,
        delivery=outcome.delivery(format_timestamp(now)),
        **RELEASED,
    )
    if outcome.expired:
        row.status = Status.EXPIRED
        row.last_error = f"expired at {claimed.expires_at:%Y-%m-%dT%H:%M:%SZ} before delivery"
        return row, "expired"
    problems = {**outcome.unavailable, **outcome.errors}
    row.last_error = "; ".join(f"{destination}: {why}" for destination, why in problems.items())
    base, cap = retry_backoff(outcome.event, config)
    until = outcome.deferred_until
    if until is not None and outcome.held:
        until = held_until(until, config.breaker_max_delay)
    decision = decide(
        rejected=bool(outcome.errors),
        retry_count=claimed.retry_count,
        max_retries=claimed.max_retries,
        unavailable_until=until,
        now=now,
        base=base,
        cap=cap,
    )
    row.retry_count = decision.retry_count
    if decision.retry_at is None:
        row.status = Status.FAILED
    else:
        row.scheduled_at = decision.retry_at
    return row, settle(row, claimed, outcome.errors, decision.result, config)


def _send_signals(
    complete: Sequence[Outcome], failed: Sequence[tuple[Outcome, OutboxEvent]]
) -> None:
    if event_published.has_listeners(OutboxEvent):
        for outcome in complete:
            event_published.send(sender=OutboxEvent, event=outcome.event)
    if event_failed.has_listeners(OutboxEvent):
        for outcome, row in failed:
            event_failed.send(sender=OutboxEvent, event=outcome.event, error=row.last_error)
