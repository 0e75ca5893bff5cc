"""Consume a Kafka topic written by :class:`~django_broadcaster.backends.KafkaBackend`.

A kafka-python ``KafkaConsumer`` in consumer group ``group`` with ``enable_auto_commit=False``:
offsets are committed only after the transactions of the messages before them have committed
(see :mod:`.base`). A new group starts from the earliest offset, so nothing published before
the consumer first ran is skipped. Messages are decoded in binary or structured content mode,
whichever they use (see :func:`~.decoding.decode_kafka_record`).

Kafka cannot leave one message unacknowledged and go on: a message whose handlers fail holds
its partition while it is retried (see :mod:`.processing`), then becomes a dead letter.

kafka-python reconnects on its own and says so only on its own loggers, so the consumer tells
the loop when the broker is gone (see :mod:`.base`): no bootstrap server takes a connection at
start, or polls keep finding no group coordinator.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from ..exceptions import BroadcasterImproperlyConfigured, missing_library
from .base import BaseConsumer
from .decoding import UndecodableMessage, decode_kafka_record
from .processing import Message

try:
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.errors import KafkaConnectionError, KafkaError
    from kafka.structs import OffsetAndMetadata, TopicPartition
except ImportError as exc:  # the extra is not installed: building the consumer says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

logger = logging.getLogger(__name__)

#: Empty polls in a row without a group coordinator after which the broker counts as gone.
POLLS_WITHOUT_COORDINATOR = 2

#: Set by the consumer itself, so ``consumer_options`` must not set them.
RESERVED_CONSUMER_OPTIONS: Final = frozenset(
    {
        "bootstrap_servers",
        "group_id",
        "enable_auto_commit",
        "key_deserializer",
        "value_deserializer",
    }
)


class KafkaTopicConsumer(BaseConsumer):
    """Consume ``topic`` in consumer group ``group``; see the module docstring.

    ``consumer_options`` go to ``kafka.KafkaConsumer`` (TLS, SASL, ``session_timeout_ms``...)
    over the default ``auto_offset_reset="earliest"``. In burst mode the consumer waits up to
    ``assignment_timeout`` to be given partitions before it calls itself idle. Other keyword
    arguments go to :class:`~.base.BaseConsumer`. :meth:`close` closes the Kafka consumer.
    """

    broker_errors = (KafkaError,) if _MISSING is None else ()

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        topic: str,
        group: str,
        *,
        batch_size: int = 100,
        poll_timeout: timedelta = timedelta(seconds=1),
        assignment_timeout: timedelta = timedelta(seconds=60),
        consumer_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if _MISSING is not None:
            raise missing_library(type(self).__name__, "kafka-python", "kafka") from _MISSING
        self.consumer_options = _checked(consumer_options or {})  # its own settings' errors first
        super().__init__(**options)
        self.bootstrap_servers, self.topic, self.group = bootstrap_servers, topic, group
        self.batch_size, self.poll_timeout = batch_size, poll_timeout
        self.assignment_timeout = assignment_timeout
        self._consumer: Any = None
        self._opened_at = 0.0
        self._listener = _AssignmentClock()
        self._assigned_all_poll = False
        self._polls_without_coordinator = 0

    def open(self) -> None:
        """Build the Kafka consumer and subscribe to the topic (it joins the group on poll).

        Raises ``KafkaConnectionError`` at once when no bootstrap server takes a connection:
        ``KafkaConsumer()`` would wait ``bootstrap_timeout_ms`` (30 s), then raise and leave its
        IO thread running.
        """
        _require_reachable(self.bootstrap_servers)
        self._consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group,
            enable_auto_commit=False,
            **{"auto_offset_reset": "earliest", **self.consumer_options},
        )
        self._consumer.subscribe([self.topic], listener=self._listener)
        self._opened_at = time.monotonic()

    def fetch(self) -> list[Message]:
        """Poll up to ``batch_size`` messages, waiting up to ``poll_timeout``.

        Raises ``KafkaConnectionError`` when polls keep finding no group coordinator.
        """
        started = time.monotonic()
        batches = self._consumer.poll(
            timeout_ms=int(self.poll_timeout.total_seconds() * 1000), max_records=self.batch_size
        )
        assigned_at = self._listener.assigned_at
        self._assigned_all_poll = assigned_at is not None and assigned_at < started
        messages = [self._message(record) for records in batches.values() for record in records]
        if not messages:
            self._check_coordinator()
        return messages

    def acknowledge(self, messages: list[Message]) -> None:
        """Commit, per partition, the offset after the last of ``messages``."""
        offsets = {}
        for message in messages:  # in order, so the last one per partition wins
            partition, offset = message.handle
            offsets[partition] = OffsetAndMetadata(offset + 1, "", -1)
        self._consumer.commit(offsets)

    def is_idle(self) -> bool:
        """Return whether a whole poll, with the same partitions assigned all along, found nothing.

        A poll during which the group was joined or rebalanced (when a dead member's session
        expires, say) may end before the first fetch, so it does not count. Without any
        assignment after ``assignment_timeout``, give up too.
        """
        waited = time.monotonic() - self._opened_at
        return self._assigned_all_poll or waited > self.assignment_timeout.total_seconds()

    def close(self) -> None:
        """Leave the group and close the Kafka consumer; safe to call twice."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close(autocommit=False)
            except KafkaError as exc:
                logger.warning("Closing the Kafka consumer failed: %s", exc)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} topic={self.topic!r} group={self.group!r}>"

    def _check_coordinator(self) -> None:
        # kafka-python's coordinator is not public API: without it, nothing is detected.
        coordinator = getattr(self._consumer, "_coordinator", None)
        lost = coordinator is not None and coordinator.coordinator_unknown()
        self._polls_without_coordinator = self._polls_without_coordinator + 1 if lost else 0
        if self._polls_without_coordinator >= POLLS_WITHOUT_COORDINATOR:
            raise KafkaConnectionError(f"no group coordinator answers at {self.bootstrap_servers}")

    def _message(self, record: Any) -> Message:
        position = f"{record.partition}:{record.offset}"
        handle = (TopicPartition(record.topic, record.partition), record.offset)
        origin = f"kafka:{self.topic}"
        try:
            event = decode_kafka_record(record.headers, record.key, record.value)
        except UndecodableMessage as exc:
            raw = _text(record)
            return Message(origin, position, handle, None, problem=str(exc), raw=raw)
        return Message(origin, position, handle, event)


class _AssignmentClock(ConsumerRebalanceListener if _MISSING is None else object):  # type: ignore[misc]
    """Note when partitions were last assigned; ``assigned_at`` is ``None`` while revoked."""

    def __init__(self) -> None:
        self.assigned_at: float | None = None

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.assigned_at = None

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned_at = time.monotonic() if assigned else None


def _checked(options: Mapping[str, Any]) -> dict[str, Any]:
    if reserved := sorted(RESERVED_CONSUMER_OPTIONS.intersection(options)):
        raise BroadcasterImproperlyConfigured(f"consumer_options must not set {reserved}.")
    if unknown := sorted(set(options) - set(KafkaConsumer.DEFAULT_CONFIG)):
        raise BroadcasterImproperlyConfigured(f"consumer_options has unknown keys {unknown}.")
    return dict(options)


def _require_reachable(servers: str | Sequence[str]) -> None:
    """Return once one of ``servers`` takes a TCP connection; else raise KafkaConnectionError."""
    for server in servers.split(",") if isinstance(servers, str) else servers:
        host, colon, port = server.strip().rpartition(":")
        try:
            address = (host.strip("[]"), int(port)) if colon else (port, 9092)
            socket.create_connection(address, timeout=5).close()
        except (OSError, ValueError):
            continue
        return
    raise KafkaConnectionError(f"no broker takes connections at {servers}")


def _text(record: Any) -> str:
    def text(value: bytes | None) -> str | None:
        return None if value is None else value.decode(errors="replace")

    headers = [[name, text(value)] for name, value in record.headers]
    return json.dumps({"key": text(record.key), "headers": headers, "value": text(record.value)})
