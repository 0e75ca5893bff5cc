"""The soak's checker: what the database committed against what every destination got.

The truth is the shop database: an event exists if and only if its request's transaction
committed, whatever the HTTP client saw (a request cut off by a fault may have committed or not).
Each destination is read back from the outside: the Redis stream whole, the Kafka topic as the
readers followed it, the local handler's notifications, and each consumer's own database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import psycopg

from . import ORDER_STEPS, ROLLBACK_MARK


def dsn(port: int, database: str) -> str:
    """Return the libpq connection string of a soak database."""
    return f"host=127.0.0.1 port={port} dbname={database} user=postgres"


def query(conninfo: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Run one query on a fresh connection and return its rows."""
    with psycopg.connect(conninfo, connect_timeout=5) as connection:
        return connection.execute(sql, params).fetchall()


@dataclass(frozen=True)
class Event:
    """A committed event as the outbox holds it."""

    id: str
    type: str
    key: str
    status: str


def committed_events(conninfo: str) -> list[Event]:
    """Return the outbox's events in publish order (``created_at``, then id)."""
    rows = query(
        conninfo,
        "select id::text, event_type, coalesce(partition_key, ''), status from outbox_events "
        "order by created_at, id",
    )
    return [Event(*map(str, row)) for row in rows]


def marked_rolled_back(conninfo: str) -> int:
    """Return how many outbox rows carry the mark of a request that rolled back on purpose."""
    rows = query(conninfo, "select count(*) from outbox_events where data::text like %s",
                 f"%{ROLLBACK_MARK}%")  # fmt: skip
    return int(rows[0][0])  # type: ignore[call-overload]


def notified(conninfo: str) -> list[str]:
    """Return the event ids the example's local handler wrote a notification for."""
    return [str(row[0]) for row in query(conninfo, "select event_id::text from shop_notification")]


def handled(conninfo: str) -> list[str]:
    """Return the event ids a consumer's handler recorded, in the order it handled them."""
    rows = query(conninfo, "select event_id::text from soak_handled order by id")
    return [str(row[0]) for row in rows]


def order_breaks(received: Sequence[str], events: Sequence[Event]) -> list[str]:
    """Return the keys whose events' first copies arrived out of publish order, with how."""
    position: dict[str, int] = {}
    for index, event_id in enumerate(received):
        position.setdefault(event_id, index)
    by_key: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.key and event.id in position:
            by_key[event.key].append(event)
    breaks = []
    for key, keyed in by_key.items():
        arrived = sorted(keyed, key=lambda event: position[event.id])
        if arrived != keyed:
            breaks.append(f"{key}: {[e.type for e in arrived]}")
    return breaks


@dataclass
class Destination:
    """What one destination received, against the committed events."""

    name: str
    received: list[str]
    events: list[Event]
    counts: Counter[str] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = Counter(self.received)

    @property
    def missing(self) -> list[str]:
        """Return the committed events it never got."""
        return [event.id for event in self.events if event.id not in self.counts]

    def unexpected(self) -> set[str]:
        """Return what it got that no committed transaction published."""
        return set(self.counts) - {event.id for event in self.events}

    @property
    def duplicates(self) -> int:
        """Return the copies beyond the first of each event."""
        return sum(count - 1 for count in self.counts.values())

    def problems(self, duplicate_bound: int | None) -> list[str]:
        """Return what is wrong: lost, unexpected, out of order, over the bound of duplicates.

        ``duplicate_bound`` of ``None`` means each event must arrive exactly once (a consumer's
        handler, behind its inbox).
        """
        found = []
        if self.missing:
            found.append(f"{len(self.missing)} events lost, first {self.missing[:3]}")
        if self.unexpected():
            found.append(f"{len(self.unexpected())} events never committed, e.g. "
                         f"{sorted(self.unexpected())[:3]}")  # fmt: skip
        breaks = order_breaks(self.received, self.events)
        if breaks:
            found.append(f"{len(breaks)} keys out of order, e.g. {breaks[:3]}")
        bound = 0 if duplicate_bound is None else duplicate_bound
        if self.duplicates > bound:
            found.append(f"{self.duplicates} duplicates, more than {bound}")
        return [f"{self.name}: {problem}" for problem in found]


def order_events(events: Iterable[Event]) -> list[Event]:
    """Return the events of the soak's order types (what the consumers handle)."""
    return [event for event in events if event.type in ORDER_STEPS]
