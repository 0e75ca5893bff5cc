"""Drain PostgreSQL to RabbitMQ with publisher confirms, side by side with the raw ceiling loop.

Each drain publishes to ``amq.topic`` at ``RABBITMQ_URL``, into a new durable queue bound for
every routing key (so that nothing is returned as unroutable), with the backend's defaults:
binary content mode, persistent messages, ``mandatory``. The ceiling loop publishes structured
JSON with pika's asynchronous connection and confirm mode, the whole claimed batch in flight
before it waits for the confirms, as the backend does, but without the backend's bookkeeping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pika
from pika.adapters.select_connection import SelectConnection

from . import ceiling
from .database import connect, count_rows, database_name, empty_outbox, fill_outbox
from .drains import WORKER_OPTIONS, timed_drain
from .report import Figure, Goal
from .rounds import best_of
from .scale import Scale
from .workers import current_worker

EXCHANGE = "amq.topic"
CONFIRM_TIMEOUT_S = 60.0


def rabbitmq_backends() -> dict[str, object]:
    """Return ``BROADCASTER["BACKENDS"]`` for one RabbitMQ backend publishing to ``amq.topic``."""
    options = {"url": os.environ["RABBITMQ_URL"], "exchange": EXCHANGE, "send_timeout": 30}
    return {"rabbitmq": {"BACKEND": "django_broadcaster.backends.RabbitMQBackend",
                         "OPTIONS": options}}  # fmt: skip


@contextmanager
def bound_queue() -> Iterator[None]:
    """Bind a new durable queue for every routing key for the block; delete it afterwards."""
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["RABBITMQ_URL"]))
    channel = connection.channel()
    queue = f"bench-{uuid.uuid4().hex[:12]}"
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, EXCHANGE, "#")
    try:
        yield
    finally:
        channel.queue_delete(queue)
        connection.close()


def drain_rate(count: int) -> float:
    """Return events/s for one worker draining ``count`` events to RabbitMQ, confirmed.

    Raises ``RuntimeError`` unless every event ends published.
    """
    empty_outbox()
    worker = current_worker(rabbitmq_backends(), *WORKER_OPTIONS)
    with bound_queue(), connect(database_name()) as poll:
        drain = timed_drain([worker], lambda: fill_outbox(count), poll, count)
        published = count_rows(poll, "published")
    if published != count:
        raise RuntimeError(f"{published} of {count} events published to RabbitMQ")
    return drain.rate


def ceiling_rate(count: int) -> float:
    """Return events/s for the raw psycopg + pika loop (confirms) draining ``count`` events."""
    empty_outbox()
    fill_outbox(count)
    with bound_queue(), connect(database_name()) as connection:
        publisher = RawConfirmingPublisher(os.environ["RABBITMQ_URL"])
        try:
            return count / ceiling.drain(connection, publisher.deliver)
        finally:
            publisher.close()


class RawConfirmingPublisher:
    """Publish a batch on a pika ``SelectConnection`` in confirm mode and wait for its confirms."""

    def __init__(self, url: str) -> None:
        self.confirmed = self.published = 0
        self.channel: object = None
        self.connection = SelectConnection(pika.URLParameters(url), on_open_callback=self._open)
        self._run_until(lambda: self.channel is not None)

    def deliver(self, rows: Sequence[ceiling.Row]) -> None:
        """Publish ``rows`` as persistent CloudEvents JSON; return once all are confirmed."""
        properties = pika.BasicProperties(
            content_type="application/cloudevents+json", delivery_mode=2
        )
        publish = self.channel.basic_publish  # type: ignore[attr-defined]
        for row in rows:
            publish(EXCHANGE, row[1], ceiling.cloud_event_json(row).encode(), properties, True)
        self.published += len(rows)
        self._run_until(lambda: self.confirmed >= self.published)

    def close(self) -> None:
        self.connection.close()
        self._run_until(lambda: self.connection.is_closed)

    def _open(self, connection: SelectConnection) -> None:
        connection.channel(on_open_callback=self._channel_open)

    def _channel_open(self, channel: object) -> None:
        channel.confirm_delivery(self._confirm, callback=lambda _: self._ready(channel))  # type: ignore[attr-defined]

    def _ready(self, channel: object) -> None:
        self.channel = channel
        self.connection.ioloop.stop()

    def _confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        self.confirmed = method.delivery_tag if method.multiple else self.confirmed + 1
        if self.confirmed >= self.published:
            self.connection.ioloop.stop()

    def _run_until(self, done: Callable[[], bool]) -> None:
        ioloop = self.connection.ioloop
        timer = ioloop.call_later(CONFIRM_TIMEOUT_S, ioloop.stop)
        while not done():
            ioloop.start()
            if not done():
                raise RuntimeError("RabbitMQ did not confirm in time")
        ioloop.remove_timeout(timer)


def measure(scale: Scale) -> list[Figure]:
    """Return the RabbitMQ drain rate and its ratio to the raw ceiling."""
    rates = best_of(
        scale.rounds,
        {
            "current": lambda: drain_rate(scale.drain_events),
            "ceiling": lambda: ceiling_rate(scale.drain_events),
        },
        higher_is_better=True,
    )
    return [
        Figure(
            "RabbitMQ drain, 1 worker, confirms",
            rates["current"],
            "ev/s",
            goal=Goal(">=", 10_000, "measured"),  # issue 23
        ),
        Figure(
            "RabbitMQ drain vs raw ceiling", rates["current"], "ev/s", rates["ceiling"], "raw loop"
        ),
    ]
