"""Backends that produce each event to a Kafka topic: kafka-python's or librdkafka's producer.

:class:`KafkaBackend` uses kafka-python (the ``kafka`` extra), pure Python and the default.
:class:`~.confluent.ConfluentKafkaBackend` uses confluent-kafka (the ``confluent`` extra),
librdkafka's C producer, which spends a fraction of the CPU per message, for outboxes that drain
thousands of events per second (docs/performance.md). Both send the same messages (:mod:`.messages`,
the CloudEvents Kafka binding) and treat errors the same way (:mod:`.base`); only their
``producer_options`` differ, being each client's own settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Final

from ...formats import STRUCTURED_CONTENT_TYPE
from .base import BaseKafkaBackend, Failures, Pending
from .confluent import ConfluentKafkaBackend
from .failures import UNREACHABLE, Problem, no_answer, problem
from .messages import MESSAGE_BUILDERS, KafkaMessage, binary_message, structured_message

__all__ = [
    "MESSAGE_BUILDERS",
    "STRUCTURED_CONTENT_TYPE",
    "BaseKafkaBackend",
    "ConfluentKafkaBackend",
    "KafkaBackend",
    "KafkaMessage",
    "binary_message",
    "structured_message",
]

try:
    from kafka import KafkaProducer
    from kafka import errors as kafka_errors

    from .connecting import NotConnected, ProducerBuild, describe
    from .partitioning import BatchPartitioner
except ImportError as exc:  # the extra is not installed: building the backend says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None
    #: Errors meaning no broker takes messages now, whatever the event: an outage. kafka-python 3
    #: reports an unreachable cluster as KafkaTimeoutError; 2.x had NoBrokersAvailable.
    OUTAGE_ERRORS: Final[tuple[type[Exception], ...]] = tuple(
        getattr(kafka_errors, name)
        for name in ("NoBrokersAvailable", "KafkaTimeoutError", "KafkaConnectionError")
        if hasattr(kafka_errors, name)
    )
    #: Errors about one message itself (its size, format or timestamp): the message is refused
    #: whatever the state of the cluster. Any other error concerns the producer or the cluster.
    MESSAGE_ERRORS: Final[tuple[type[Exception], ...]] = tuple(
        getattr(kafka_errors, name)
        for name in (
            "MessageSizeTooLargeError",
            "RecordListTooLargeError",
            "InvalidRecordError",
            "CorruptRecordError",
            "InvalidTimestampError",
            "UnsupportedForMessageFormatError",
        )
        if hasattr(kafka_errors, name)
    )

logger = logging.getLogger(__name__)

#: Set by the backend itself, so ``producer_options`` must not set them.
RESERVED_PRODUCER_OPTIONS: Final = frozenset(
    {"bootstrap_servers", "key_serializer", "value_serializer"}
)
#: A batch of up to this many bytes per partition and request: 1 MiB (the default
#: ``max_request_size``) lets a whole worker batch go in one request, where kafka-python's 16 KiB
#: woke its sender thread every few events (docs/performance.md).
BATCH_SIZE: Final = 1024 * 1024


class KafkaBackend(BaseKafkaBackend):
    """Produce events to ``topic`` with kafka-python's ``KafkaProducer``.

    ``producer_options`` go to ``kafka.KafkaProducer`` (TLS, SASL, tuning) and override the
    defaults: ``acks="all"``, idempotence, ``linger_ms=10``, 1 MiB batches, keyless messages
    kept together (:class:`~.partitioning.BatchPartitioner`), and blocking calls bounded by
    ``send_timeout``. See :class:`.base.BaseKafkaBackend` for the other options.
    """

    client_library = "kafka-python"
    extra = "kafka"
    #: The producer being built, kept while it is (see :mod:`.connecting`).
    _build: ProducerBuild | None = None

    @classmethod
    def _client_missing(cls) -> ImportError | None:
        return _MISSING

    def _client_config(self, producer_options: Mapping[str, Any]) -> dict[str, Any]:
        if reserved := sorted(RESERVED_PRODUCER_OPTIONS.intersection(producer_options)):
            self._improperly_configured(f"producer_options must not set {reserved}")
        if unknown := sorted(set(producer_options) - set(KafkaProducer.DEFAULT_CONFIG)):
            self._improperly_configured(f"producer_options has unknown keys {unknown}")
        timeout_ms = int(self.send_timeout * 1000)
        config = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 10,
            "batch_size": BATCH_SIZE,
            "partitioner": BatchPartitioner(),
            "client_id": f"django-broadcaster-{self.alias}",
            "max_block_ms": timeout_ms,
            "request_timeout_ms": timeout_ms,
            "bootstrap_timeout_ms": timeout_ms,  # kafka-python 3
            "api_version_auto_timeout_ms": timeout_ms,  # kafka-python 2
            **producer_options,
        }
        # Unacknowledged messages expire soon after send_timeout instead of two minutes later:
        # kafka-python's close() cannot finish while messages are pending.
        config.setdefault("delivery_timeout_ms", config["linger_ms"] + config["request_timeout_ms"])
        known = KafkaProducer.DEFAULT_CONFIG
        return {key: value for key, value in config.items() if key in known}

    def _client_connect(self) -> Any:
        build = self._build
        if build is None or not build.usable:
            if build is not None:
                build.abandon()
            build = self._build = ProducerBuild(
                partial(
                    KafkaProducer, bootstrap_servers=self.bootstrap_servers, **self._producer_config
                ),
                len(self._servers()),
                f"broadcaster-{self.alias}-connect",
            )
        try:
            producer = build.wait(self.send_timeout)
        except NotConnected as exc:
            latest = exc.latest()  # chained: the client's own error, when there is one
            raise self._outage(exc, self._not_connected(exc)) from (latest[1] if latest else exc)
        except kafka_errors.KafkaError as exc:
            raise self._outage(exc) from exc
        self._build = None
        return producer

    def close(self) -> None:
        """Flush and close the producer, and the one being built. Safe to call twice."""
        build, self._build = self._build, None
        if build is not None:
            build.abandon()
        super().close()

    def _client_close(self, producer: Any) -> None:
        try:
            producer.close(timeout=self.send_timeout)
        except kafka_errors.KafkaError as exc:
            logger.warning("Backend %r: closing the producer failed: %s", self.alias, exc)

    def _client_deliver(self, pending: Sequence[Pending]) -> Failures:
        failures: Failures = []
        futures = []
        send = self._producer.send
        for event, message in pending:
            try:
                future = send(
                    message.topic or self.topic, message.value, message.key, message.headers
                )
            except kafka_errors.KafkaError as exc:
                failures.append((event, exc))
            else:
                futures.append((event, future))
        try:
            self._producer.flush(timeout=self.send_timeout)
        except OUTAGE_ERRORS as exc:
            raise self._outage(exc) from exc
        # flush() returns once every future is done: read each outcome without waiting on it.
        for event, future in futures:
            if not future.is_done:
                raise self._unavailable("acknowledgements still missing after flush()")
            if future.exception is not None:
                failures.append((event, future.exception))
        return failures

    def _client_message_error(self, exc: Exception) -> bool:
        return isinstance(exc, MESSAGE_ERRORS)

    def _client_problem(self, exc: Exception) -> Problem | None:
        if isinstance(exc, kafka_errors.KafkaTimeoutError):
            return no_answer(self.send_timeout, ",".join(self._servers()), exc)
        return describe(exc)

    def _not_connected(self, exc: NotConnected) -> Problem:
        """Return what a failed connection attempt says: the latest failure, or no answer."""
        servers, latest = self._servers(), exc.latest()
        if latest is None:
            return no_answer(self.send_timeout, ",".join(servers))
        node, error = latest
        found = describe(error, node if len(servers) > 1 else "") or problem(UNREACHABLE, error)
        return found if exc.every_server else no_answer(self.send_timeout, ",".join(servers), found)
