"""The raw ceiling: the least a drain can do, written directly with psycopg and a client.

Each cycle is one transaction: claim up to 500 due rows with ``FOR UPDATE SKIP LOCKED``, deliver
them in one go (a pipelined ``XADD`` per row, or Kafka sends and one flush), mark them published
with one ``UPDATE ... WHERE id = ANY(...)``, commit. No retries, no leases, no bookkeeping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from .database import OUTBOX_TABLE

BATCH = 500
CLAIM = (
    f"SELECT id, event_type, source, time, data FROM {OUTBOX_TABLE} "
    "WHERE status = 'pending' AND scheduled_at <= now() "
    "ORDER BY scheduled_at LIMIT %s FOR UPDATE SKIP LOCKED"
)
MARK = f"UPDATE {OUTBOX_TABLE} SET status = 'published', published_at = now() WHERE id = ANY(%s)"
Row = tuple[Any, ...]


def cloud_event_json(row: Row) -> str:
    """Return the CloudEvents JSON of an outbox row ``(id, type, source, time, data)``."""
    event_id, event_type, source, event_time, data = row
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(event_id),
            "type": event_type,
            "source": source,
            "time": event_time.isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }
    )


def drain(connection: psycopg.Connection, deliver: Callable[[Sequence[Row]], None]) -> float:
    """Deliver every due row with ``deliver``; return the seconds it took.

    ``connection`` must be in autocommit mode (each cycle opens its own transaction).
    """
    started = time.perf_counter()
    while True:
        with connection.transaction():
            rows = connection.execute(CLAIM, [BATCH]).fetchall()
            if not rows:
                return time.perf_counter() - started
            deliver(rows)
            connection.execute(MARK, [[row[0] for row in rows]])


def redis_sender(redis_client: Any, stream: str) -> Callable[[Sequence[Row]], None]:
    """Return a ``deliver`` that pipelines one ``XADD`` per row, with 0.1.1's stream fields."""

    def deliver(rows: Sequence[Row]) -> None:
        pipeline = redis_client.pipeline(transaction=False)
        for row in rows:
            fields = {
                "cloud_event": cloud_event_json(row),
                "event_id": str(row[0]),
                "event_type": row[1],
                "source": row[2],
                "timestamp": row[3].isoformat(),
            }
            pipeline.xadd(stream, fields)
        pipeline.execute()

    return deliver


def kafka_sender(producer: Any, topic: str) -> Callable[[Sequence[Row]], None]:
    """Return a ``deliver`` that sends each row as structured CloudEvents JSON, then flushes."""

    def deliver(rows: Sequence[Row]) -> None:
        futures = [producer.send(topic, cloud_event_json(row).encode()) for row in rows]
        producer.flush()
        for future in futures:
            future.get(timeout=0)

    return deliver
