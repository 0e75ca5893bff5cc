"""A RabbitMQ queue for tests: declared, read and deleted with pika's blocking client."""

from __future__ import annotations

from typing import Any

import pika


class Queue:
    """The durable queue ``name``, bound to ``exchange`` with ``<name>.#``.

    Events whose type starts with ``<name>.`` reach it when the backend routes by event type.
    """

    def __init__(self, url: str, name: str, exchange: str = "amq.topic") -> None:
        self.url, self.name, self.exchange = url, name, exchange
        self.binding_key = f"{name}.#"
        with self._channel() as channel:
            channel.queue_declare(name, durable=True)
            channel.queue_bind(name, exchange, self.binding_key)

    def bind(self, binding_key: str) -> None:
        """Bind the queue to the exchange with ``binding_key`` too."""
        with self._channel() as channel:
            channel.queue_bind(self.name, self.exchange, binding_key)

    def publish(self, routing_key: str, body: bytes, **properties: Any) -> None:
        """Publish ``body`` to the exchange as another producer would, with ``properties``."""
        with self._channel() as channel:
            channel.basic_publish(
                self.exchange, routing_key, body, pika.BasicProperties(**properties)
            )

    def count(self) -> int:
        """Return how many messages wait in the queue."""
        with self._channel() as channel:
            return int(channel.queue_declare(self.name, passive=True).method.message_count)

    def get_all(self) -> list[tuple[Any, bytes]]:
        """Take every waiting message off the queue (acknowledged); return (properties, body)."""
        taken = []
        with self._channel() as channel:
            while True:
                method, properties, body = channel.basic_get(self.name, auto_ack=True)
                if method is None:
                    return taken
                taken.append((properties, body))

    def delete(self) -> None:
        """Delete the queue, with whatever it holds."""
        with self._channel() as channel:
            channel.queue_delete(self.name)

    def _channel(self) -> Any:
        return _Channel(self.url)


class _Channel:
    """A blocking connection's channel for one ``with`` block."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))

    def __enter__(self) -> Any:
        return self.connection.channel()

    def __exit__(self, *exc_info: object) -> None:
        self.connection.close()
