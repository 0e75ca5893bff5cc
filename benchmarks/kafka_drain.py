"""Drain PostgreSQL to Kafka with each producer engine, side by side with the raw ceiling loop.

Each drain writes to a new topic of the Kafka-protocol broker at ``KAFKA_BOOTSTRAP_SERVERS``
(created on first produce), with the backend's defaults: binary content mode, ``acks=all``,
idempotence, ``linger_ms=10``. ``KafkaBackend`` uses kafka-python, ``ConfluentKafkaBackend``
confluent-kafka (librdkafka). The ceiling loop sends structured JSON with kafka-python and the
same producer settings.
"""

from __future__ import annotations

import os
import uuid

from kafka import KafkaProducer

from . import ceiling
from .database import connect, count_rows, database_name, empty_outbox, fill_outbox
from .drains import WORKER_OPTIONS, timed_drain
from .report import Figure, Goal
from .rounds import best_of
from .scale import Scale
from .workers import current_worker

#: The backend class of each producer engine.
ENGINES = {
    "kafka-python": "django_broadcaster.backends.KafkaBackend",
    "confluent-kafka": "django_broadcaster.backends.kafka.ConfluentKafkaBackend",
}


def kafka_backends(topic: str, engine: str = "kafka-python") -> dict[str, object]:
    """Return ``BROADCASTER["BACKENDS"]`` for one Kafka backend producing to ``topic``."""
    options = {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"], "topic": topic}
    return {"kafka": {"BACKEND": ENGINES[engine], "OPTIONS": options}}


def drain_rate(count: int, engine: str = "kafka-python") -> float:
    """Return events/s for one worker draining ``count`` events to a new topic with ``engine``.

    Raises ``RuntimeError`` unless every event ends published.
    """
    empty_outbox()
    worker = current_worker(kafka_backends(_new_topic(), engine), *WORKER_OPTIONS)
    with connect(database_name()) as poll:
        drain = timed_drain([worker], lambda: fill_outbox(count), poll, count)
        published = count_rows(poll, "published")
    if published != count:
        raise RuntimeError(f"{published} of {count} events published to Kafka")
    return drain.rate


def ceiling_rate(count: int) -> float:
    """Return events/s for the raw psycopg + kafka-python loop draining ``count`` events."""
    empty_outbox()
    fill_outbox(count)
    producer = KafkaProducer(
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
    )
    try:
        with connect(database_name()) as connection:
            return count / ceiling.drain(connection, ceiling.kafka_sender(producer, _new_topic()))
    finally:
        producer.close()


def measure(scale: Scale) -> list[Figure]:
    """Return the Kafka drain rate of each engine and their ratios to the raw ceiling."""
    rates = best_of(
        scale.rounds,
        {
            "current": lambda: drain_rate(scale.drain_events),
            "confluent": lambda: drain_rate(scale.drain_events, "confluent-kafka"),
            "ceiling": lambda: ceiling_rate(scale.drain_events),
        },
        higher_is_better=True,
    )
    return [
        Figure(
            "Kafka drain, 1 worker", rates["current"], "ev/s", goal=Goal(">=", 8_000, "measured")
        ),
        Figure(
            "Kafka drain vs raw ceiling", rates["current"], "ev/s", rates["ceiling"], "raw loop"
        ),
        Figure(
            "Kafka drain, confluent-kafka vs kafka-python",
            rates["confluent"],
            "ev/s",
            rates["current"],
            "kafka-python",
        ),
    ]


def _new_topic() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"
