"""Consume a RabbitMQ queue written by :class:`~django_broadcaster.backends.RabbitMQBackend`.

The consumer declares what it reads unless told not to: a durable ``queue``, bound to
``exchange`` with each of ``binding_keys`` (``#``: every routing key), and the exchange itself
as a durable topic exchange unless it is one of the broker's own ``amq.*``. Messages arrive
with manual acknowledgement, at most ``prefetch`` unacknowledged at a time, and are decoded in
binary or structured content mode, whichever they use (see
:func:`~.decoding.decode_amqp_message`). Each is acknowledged, with one ``multiple`` ack per
batch, only after its transaction has committed (see :mod:`.base`).

A message delivered again (the consumer died before its ack, or the connection dropped) is
skipped by the inbox. Messages are never rejected back to the queue: a failing one is retried
in place, then kept as a dead letter in the inbox (:mod:`.processing`), as on every transport.
When the connection or channel fails, the loop waits and reconnects; the messages taken but not
acknowledged are redelivered by the broker.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ..exceptions import missing_library
from .base import BaseConsumer
from .decoding import UndecodableMessage, decode_amqp_message
from .processing import Message

try:
    import pika
    from pika.exceptions import AMQPChannelError, AMQPConnectionError

    from ..backends.rabbitmq.client_log import quiet
except ImportError as exc:  # the extra is not installed: building the consumer says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

logger = logging.getLogger(__name__)


class RabbitMQQueueConsumer(BaseConsumer):
    """Consume ``queue`` on the broker at ``url``; see the module docstring.

    ``declare=False`` declares and binds nothing (the queue must exist). ``prefetch`` bounds the
    messages the broker sends ahead (at least ``batch_size``); ``block`` is how long a fetch
    waits for one. Other keyword arguments go to :class:`~.base.BaseConsumer`. :meth:`close`
    closes the connection.
    """

    broker_errors = (AMQPConnectionError, AMQPChannelError) if _MISSING is None else ()

    def __init__(
        self,
        url: str,
        queue: str,
        *,
        exchange: str = "amq.topic",
        binding_keys: Sequence[str] = ("#",),
        declare: bool = True,
        batch_size: int = 100,
        prefetch: int | None = None,
        block: timedelta = timedelta(seconds=1),
        **options: Any,
    ) -> None:
        if _MISSING is not None:
            raise missing_library(type(self).__name__, "pika", "rabbitmq") from _MISSING
        super().__init__(**options)
        self.url, self.queue, self.exchange = url, queue, exchange
        self.binding_keys, self.declare = list(binding_keys), declare
        self.batch_size, self.block = batch_size, block
        self.prefetch = max(prefetch or 2 * batch_size, batch_size)
        self._connection: Any = None
        self._channel: Any = None
        self._taken: list[Message] = []  # delivered, not handed out by fetch() yet

    def open(self) -> None:
        """Connect, declare and bind (unless ``declare`` is off), and start consuming."""
        self.close()
        with quiet():  # the outage is reported once, by the consumer's loop
            self._connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = self._channel = self._connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        if self.declare:
            self._declare(channel)
        channel.basic_consume(self.queue, self._on_message, auto_ack=False)

    def fetch(self) -> list[Message]:
        """Return up to ``batch_size`` delivered messages, waiting up to ``block`` for one.

        Reconnects first when the connection or channel was lost.
        """
        if not (self._channel is not None and self._channel.is_open):
            self.open()
        if not self._taken:
            with quiet():
                self._connection.process_data_events(time_limit=self.block.total_seconds())
        batch, self._taken = self._taken[: self.batch_size], self._taken[self.batch_size :]
        return batch

    def acknowledge(self, messages: list[Message]) -> None:
        """Acknowledge ``messages`` with one ``multiple`` ack, if their channel is still open.

        The messages of a channel that was closed since are redelivered by the broker (its
        delivery tags mean nothing on another channel).
        """
        channel, tag = messages[-1].handle
        if channel is self._channel and channel.is_open:
            channel.basic_ack(delivery_tag=tag, multiple=True)

    def is_idle(self) -> bool:
        """Return whether nothing is left to hand out after a fetch that waited ``block``."""
        return not self._taken

    def close(self) -> None:
        """Close the connection; messages not acknowledged go back to the queue. Safe twice."""
        connection, self._connection, self._channel = self._connection, None, None
        self._taken = []
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except self.broker_errors as exc:
                logger.debug("Closing the RabbitMQ connection failed: %s", exc)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} queue={self.queue!r} exchange={self.exchange!r}>"

    def _declare(self, channel: Any) -> None:
        if not self.exchange.startswith("amq."):  # the broker's own: they exist, and are locked
            channel.exchange_declare(self.exchange, "topic", durable=True)
        channel.queue_declare(self.queue, durable=True)
        for key in self.binding_keys:
            channel.queue_bind(self.queue, self.exchange, routing_key=key)

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._taken.append(self._message(channel, method.delivery_tag, properties, body))

    def _message(self, channel: Any, tag: int, properties: Any, body: bytes) -> Message:
        origin, handle = f"rabbitmq:{self.queue}", (channel, tag)
        # Stable across redeliveries, unlike the delivery tag: it keys an undecodable one.
        position = properties.message_id or f"sha256:{hashlib.sha256(body).hexdigest()[:32]}"
        try:
            event = decode_amqp_message(properties.content_type, properties.headers, body)
        except UndecodableMessage as exc:
            raw = _kept(properties, body)
            return Message(origin, position, handle, None, problem=str(exc), raw=raw)
        return Message(origin, position, handle, event)


def _kept(properties: Any, body: bytes) -> str:
    """Return the message as text for its dead letter (see ``decode_dead_letter``)."""
    headers = {
        name: value.decode(errors="replace") if isinstance(value, bytes) else value
        for name, value in (properties.headers or {}).items()
    }
    kept = {
        "content_type": properties.content_type,
        "headers": headers,
        "body": body.decode(errors="replace"),
    }
    return json.dumps(kept, default=str)
