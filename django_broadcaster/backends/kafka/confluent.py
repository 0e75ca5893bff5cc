"""A Kafka backend on confluent-kafka, librdkafka's producer, whose work is done in C.

Messages and the error policy are those of :class:`~.base.BaseKafkaBackend`: only an error about
the message (too large, invalid, a bad timestamp) refuses the event; a delivery timeout, a
transport, authentication or fatal producer error makes the backend unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ..base import masked
from .base import BaseKafkaBackend, Failures, Pending

try:
    from confluent_kafka import KafkaError, KafkaException, Producer
except ImportError as exc:  # the extra is not installed: building the backend says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None
    #: Error codes about one message itself: the message is refused whatever the cluster's state.
    MESSAGE_ERROR_CODES: Final = frozenset(
        {
            KafkaError.MSG_SIZE_TOO_LARGE,
            KafkaError.RECORD_LIST_TOO_LARGE,
            KafkaError.INVALID_MSG,
            KafkaError.INVALID_MSG_SIZE,
            KafkaError.INVALID_RECORD,
            KafkaError.INVALID_TIMESTAMP,
            KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        }
    )

logger = logging.getLogger(__name__)
#: librdkafka's own log lines (connection attempts, configuration warnings) go here.
client_logger = logging.getLogger(f"{__name__}.librdkafka")

#: kafka-python's names for the security settings, and librdkafka's: a ``KafkaBackend``'s TLS
#: and SASL ``producer_options`` work here unchanged.
SECURITY_OPTIONS: Final = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "sasl_kerberos_service_name": "sasl.kerberos.service.name",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
    "ssl_crlfile": "ssl.crl.location",
    "ssl_ciphers": "ssl.cipher.suites",
}
#: Set by the backend itself, so ``producer_options`` must not set them.
RESERVED_PRODUCER_OPTIONS: Final = frozenset({"bootstrap.servers", "metadata.broker.list"})
#: How long produce() may wait for room in librdkafka's queue before trying again.
QUEUE_FULL_WAIT_S: Final = 0.05


class ConfluentKafkaBackend(BaseKafkaBackend):
    """Produce events to ``topic`` with confluent-kafka's ``Producer`` (librdkafka).

    ``producer_options`` are librdkafka's configuration properties (``"linger.ms"``,
    ``"compression.type"``, ...), plus kafka-python's names of the TLS and SASL settings (see
    :data:`SECURITY_OPTIONS`). They override the defaults: ``acks="all"``, idempotence,
    ``linger.ms=10``, and ``message.timeout.ms`` and connection timeouts of ``send_timeout``.
    An unknown or invalid property is reported when the backend is built, without connecting.
    """

    client_library = "confluent-kafka"
    extra = "confluent"
    #: librdkafka's latest error (KafkaError) since the producer was built, reported as the
    #: cause when the cluster stays away.
    _last_error: Any = None

    @classmethod
    def _client_missing(cls) -> ImportError | None:
        return _MISSING

    def _client_config(self, producer_options: Mapping[str, Any]) -> dict[str, Any]:
        options = {SECURITY_OPTIONS.get(key, key): value for key, value in producer_options.items()}
        if "ssl_check_hostname" in options:
            check = options.pop("ssl_check_hostname")
            options["ssl.endpoint.identification.algorithm"] = "https" if check else "none"
        if reserved := sorted(RESERVED_PRODUCER_OPTIONS.intersection(options)):
            self._improperly_configured(f"producer_options must not set {reserved}")
        timeout_ms = int(self.send_timeout * 1000)
        config = {
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 10,
            "client.id": f"django-broadcaster-{self.alias}",
            "message.timeout.ms": timeout_ms,
            "socket.connection.setup.timeout.ms": timeout_ms,
            # Successes need no callback: flush() returning 0 means every message was handled.
            "delivery.report.only.error": True,
            "logger": client_logger,
            **options,
            "error_cb": self._on_client_error,
        }
        self._validate(config)
        return config

    def _validate(self, config: Mapping[str, Any]) -> None:
        """Have librdkafka check ``config`` without brokers (so without any network)."""
        # Without security.protocol no TLS context is built, so certificate files need not
        # exist where the system checks run; librdkafka still checks every name and value.
        dry_run = {k: v for k, v in config.items() if k not in ("security.protocol", "logger")}
        try:
            Producer({**dry_run, "log_level": 0})
        except KafkaException as exc:
            # librdkafka quotes the value it refuses, which may be a password: mask them all.
            problem = masked(exc.args[0].str() if exc.args else str(exc), config.values())
            self._improperly_configured(
                f"librdkafka refused producer_options: {problem} (use librdkafka's property "
                "names, such as linger.ms, or kafka-python's names of the security settings)"
            )

    def _client_connect(self) -> Any:
        self._last_error = None
        servers = self.bootstrap_servers
        bootstrap = servers if isinstance(servers, str) else ",".join(servers)
        producer = Producer({**self._producer_config, "bootstrap.servers": bootstrap})
        try:
            # Fetching the topic's metadata proves a broker answers, as kafka-python's
            # bootstrap does, and spares the first send that wait.
            producer.list_topics(self.topic, timeout=self.send_timeout)
        except KafkaException as exc:
            self._discard(producer)
            raise self._unavailable(self._last_error or exc.args[0]) from exc
        return producer

    def _client_close(self, producer: Any) -> None:
        remaining = producer.flush(self.send_timeout)
        if remaining:
            logger.warning(
                "Backend %r: closing the producer dropped %d unacknowledged messages.",
                self.alias,
                remaining,
            )
        self._discard(producer)

    def _client_deliver(self, pending: Sequence[Pending]) -> Failures:
        failures: Failures = []
        for event, message in pending:
            report = _reporter(failures, event)
            try:
                self._produce(message.key, message.value, message.headers, report)
            except KafkaException as exc:
                failures.append((event, exc))
        remaining = self._producer.flush(self.send_timeout)
        if remaining:
            # Dropped now, so that close() does not wait for them a second time.
            self._producer.purge()
            error = self._last_error
            raise self._unavailable(
                f"{remaining} messages unacknowledged after {self.send_timeout} s: "
                f"{error or 'no broker answered'}"
            ) from (None if error is None else KafkaException(error))
        return failures

    def _client_message_error(self, exc: Exception) -> bool:
        if not isinstance(exc, KafkaException) or not exc.args:
            return False
        error: KafkaError = exc.args[0]
        return not error.fatal() and error.code() in MESSAGE_ERROR_CODES

    def _produce(self, key: Any, value: Any, headers: Any, report: Callable[..., None]) -> None:
        """Queue one message, waiting (up to ``send_timeout``) while librdkafka's queue is full."""
        waited = 0.0
        while True:
            try:
                self._producer.produce(self.topic, value, key, headers=headers, on_delivery=report)
                return
            except BufferError as exc:
                if waited >= self.send_timeout:
                    raise self._unavailable("librdkafka's queue stays full") from exc
                self._producer.poll(QUEUE_FULL_WAIT_S)
                waited += QUEUE_FULL_WAIT_S

    def _on_client_error(self, error: KafkaError) -> None:
        """Remember librdkafka's latest error, the cause reported if the cluster stays away."""
        self._last_error = error
        logger.debug("Backend %r: librdkafka reports %s", self.alias, error)

    def _discard(self, producer: Any) -> None:
        producer.purge()
        producer.poll(0)  # serve the purged messages' reports, so nothing refers to them


def _reporter(failures: Failures, event: Any) -> Callable[[Any, Any], None]:
    """Return a delivery callback appending ``event`` and its error to ``failures``."""

    def report(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            failures.append((event, KafkaException(error)))

    return report
