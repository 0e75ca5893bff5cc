"""A backend that produces each event to a Kafka topic with kafka-python.

Messages are built by the cloudevents SDK's Kafka binding, then corrected where SDK 2.2.0 departs
from the CloudEvents Kafka protocol binding 1.0:

* structured mode: the SDK's ``content-type`` is ``application/cloudevents+json``; the binding
  asks for ``application/cloudevents+json; charset=UTF-8``.
* binary mode: the SDK writes only dicts as JSON; a list, string, number or boolean comes out as
  Python text (``[1, 'a']``, ``hello``, ``True``), so JSON data is encoded here. An event without
  data gets an empty value where the binding wants none. Boolean extensions come out as
  ``True``/``False`` where CloudEvents' canonical strings are ``true``/``false``.

The message key is the ``partitionkey`` extension when the event has one (the binding's opt-in
key mapper), and ``partitionkey`` stays in the event: a ``ce_partitionkey`` header in binary mode.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from cloudevents.core.bindings import kafka as kafka_binding

from ..events import JSON_FORMAT, CloudEvent, ExtensionValue, encode_data, to_sdk_event
from ..exceptions import (
    BackendUnavailable,
    BroadcasterImproperlyConfigured,
    EventRejected,
    InvalidEvent,
)
from .base import BaseBackend, Rejections

try:
    from kafka import KafkaProducer
    from kafka import errors as kafka_errors
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
    #: Errors about one record itself (its size, format or timestamp): the record is refused
    #: whatever the state of the cluster. Any other error concerns the producer or the cluster.
    RECORD_ERRORS: Final[tuple[type[Exception], ...]] = tuple(
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

STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=UTF-8"
#: Set by the backend itself, so ``producer_options`` must not set them.
RESERVED_PRODUCER_OPTIONS: Final = frozenset(
    {"bootstrap_servers", "key_serializer", "value_serializer"}
)
_TOPIC_NAME: Final = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True)
class KafkaRecord:
    """A message ready for ``KafkaProducer.send``: key, value and ``(str, bytes)`` headers."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def binary_record(event: CloudEvent) -> KafkaRecord:
    """Return ``event`` in binary content mode (see the module docstring for the corrections).

    Raises ``InvalidEvent`` if the event has no id or its JSON data cannot be encoded.
    """
    message = kafka_binding.to_binary(to_sdk_event(event), JSON_FORMAT)
    headers = dict(message.headers)
    headers.update((f"ce_{name}", _header_value(v)) for name, v in event.extensions.items())
    value = _binary_value(event)
    key = _key(message.key)
    if value is None and key is None:
        value = b""  # kafka-python refuses a message with neither key nor value
    return KafkaRecord(key=key, value=value, headers=list(headers.items()))


def structured_record(event: CloudEvent) -> KafkaRecord:
    """Return ``event`` in structured content mode, as CloudEvents JSON.

    Raises ``InvalidEvent`` if the event has no id.
    """
    message = kafka_binding.to_structured(to_sdk_event(event), JSON_FORMAT)
    headers = {**message.headers, "content-type": STRUCTURED_CONTENT_TYPE.encode()}
    return KafkaRecord(key=_key(message.key), value=message.value, headers=list(headers.items()))


#: How each content mode turns an event into a message.
RECORD_BUILDERS: Final = {"binary": binary_record, "structured": structured_record}


class KafkaBackend(BaseBackend):
    """Produce events to ``topic``, in ``content_mode`` "binary" (default) or "structured".

    ``producer_options`` go to ``kafka.KafkaProducer`` (TLS, SASL, tuning) and override the
    defaults: ``acks="all"``, idempotence, ``linger_ms=10``, and blocking calls bounded by
    ``send_timeout`` (seconds, also the wait for acknowledgements). :meth:`open` (or the first
    send) builds the producer and connects; :meth:`close` flushes and closes it.
    """

    #: send_batch() sends the whole batch, then waits once for every acknowledgement.
    supports_batching = True

    def __init__(
        self,
        alias: str,
        *,
        bootstrap_servers: str | Sequence[str],
        topic: str,
        content_mode: str = "binary",
        producer_options: Mapping[str, Any] | None = None,
        send_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        _require_kafka(alias)
        self.bootstrap_servers, self.topic = bootstrap_servers, topic
        self.content_mode, self.send_timeout = content_mode, send_timeout
        self._check(producer_options or {})
        self._producer_config = self._make_producer_config(producer_options or {})
        self._producer: Any = None

    def open(self) -> bool:
        """Build the producer if needed and return whether this call built it.

        Raises ``BackendUnavailable`` when no broker answers within ``send_timeout``.
        """
        if self._producer is not None:
            return False
        logger.debug("Backend %r: connecting to Kafka at %s.", self.alias, self.bootstrap_servers)
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap_servers, **self._producer_config
            )
        except OUTAGE_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return True

    def close(self) -> None:
        """Flush and close the producer. Safe to call twice, or without :meth:`open`."""
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=self.send_timeout)
            except kafka_errors.KafkaError as exc:
                logger.warning("Backend %r: closing the producer failed: %s", self.alias, exc)

    def send(self, event: CloudEvent) -> None:
        """Produce ``event`` and wait for its acknowledgement, or raise a ``DeliveryError``."""
        rejected = self.send_batch([event])
        if rejected:
            raise rejected[str(event.id)]

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """Send ``events``, wait once for all acknowledgements; return the refused ones by id.

        Opens the producer if needed (the caller closes it). Raises ``BackendUnavailable``, with
        the cause chained, when no broker takes messages within ``send_timeout``, or the producer
        fails for any reason but the record; messages sent before that may still be written (at
        least once). The producer is then closed, and the next call builds a new one.
        """
        if not events:
            return {}
        self.open()
        try:
            return self._send_all(events)
        except BackendUnavailable:
            # Start afresh on the next attempt: after a broker restart kafka-python's producer can
            # stay stuck or, with idempotence, end in a fatal state (its id is unknown there).
            self.close()
            raise

    def _send_all(self, events: Sequence[CloudEvent]) -> Rejections:
        rejected: Rejections = {}
        pending = []
        for event in events:
            try:
                pending.append((event, self._produce(event)))
            except EventRejected as exc:
                rejected[str(event.id)] = exc
        self._flush()
        for event, future in pending:
            if (error := self._outcome(event, future)) is not None:
                rejected[str(event.id)] = error
        return rejected

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} alias={self.alias!r} "
            f"bootstrap_servers={self.bootstrap_servers!r} topic={self.topic!r} "
            f"content_mode={self.content_mode!r}>"
        )

    def _produce(self, event: CloudEvent) -> Any:
        """Hand ``event`` to the producer and return its future; raise for a refused event."""
        try:
            record = RECORD_BUILDERS[self.content_mode](event)
            return self._producer.send(
                self.topic, key=record.key, value=record.value, headers=record.headers
            )
        except (InvalidEvent, kafka_errors.KafkaError) as exc:
            raise self._rejected(event, exc) from exc

    def _flush(self) -> None:
        try:
            self._producer.flush(timeout=self.send_timeout)
        except OUTAGE_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def _outcome(self, event: CloudEvent, future: Any) -> EventRejected | None:
        """Return the rejection of ``event`` once ``future`` is done, or ``None`` if it is acked."""
        try:
            future.get(timeout=0)
        except kafka_errors.KafkaError as exc:
            return self._rejected(event, exc)
        return None

    def _rejected(self, event: CloudEvent, exc: Exception) -> EventRejected:
        """Return the rejection of ``event`` caused by ``exc``; raise if ``exc`` is not its fault.

        Only an invalid event or a record error (size, format) refuses the event. Any other
        error concerns the producer or the cluster (unreachable, the producer's id unknown after
        the broker lost its state, a producer in a fatal state): ``BackendUnavailable``.
        """
        if not isinstance(exc, (InvalidEvent, *RECORD_ERRORS)):
            raise self._unavailable(exc) from exc
        error = EventRejected(
            f"Backend {self.alias!r}: Kafka refused event {event.id}: {exc}",
            destination=self.alias,
        )
        error.__cause__ = exc
        return error

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        return BackendUnavailable(
            f"Backend {self.alias!r}: Kafka at {self.bootstrap_servers} is unavailable: {exc}",
            destination=self.alias,
        )

    def _make_producer_config(self, producer_options: Mapping[str, Any]) -> dict[str, Any]:
        timeout_ms = int(self.send_timeout * 1000)
        config = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 10,
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

    def _check(self, producer_options: Mapping[str, Any]) -> None:
        if not isinstance(self.topic, str) or not _TOPIC_NAME.fullmatch(self.topic):
            self._improperly_configured("topic must be 1-249 of the characters a-z A-Z 0-9 . _ -")
        if self.content_mode not in RECORD_BUILDERS:
            self._improperly_configured(f"content_mode must be one of {list(RECORD_BUILDERS)}")
        if not isinstance(self.send_timeout, int | float) or self.send_timeout <= 0:
            self._improperly_configured("send_timeout must be a positive number of seconds")
        if not self.bootstrap_servers:
            self._improperly_configured("bootstrap_servers must name at least one broker")
        if reserved := sorted(RESERVED_PRODUCER_OPTIONS.intersection(producer_options)):
            self._improperly_configured(f"producer_options must not set {reserved}")
        if unknown := sorted(set(producer_options) - set(KafkaProducer.DEFAULT_CONFIG)):
            self._improperly_configured(f"producer_options has unknown keys {unknown}")

    def _improperly_configured(self, problem: str) -> NoReturn:
        raise BroadcasterImproperlyConfigured(
            f"Backend {self.alias!r} ({type(self).__name__}): {problem}."
        )


def _binary_value(event: CloudEvent) -> bytes | None:
    if event.data is None:
        return None
    if JSON_FORMAT.JSON_CONTENT_TYPE_PATTERN.match(event.datacontenttype):
        return encode_data(event.data)
    return JSON_FORMAT.write_data(event.data, event.datacontenttype)


def _header_value(value: ExtensionValue) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode()


def _key(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


def _require_kafka(alias: str) -> None:
    if _MISSING is not None:
        raise BroadcasterImproperlyConfigured(
            f"Backend {alias!r} needs kafka-python: pip install 'django-broadcaster[kafka]'."
        ) from _MISSING
