"""A Kafka backend on confluent-kafka, librdkafka's producer, whose work is done in C.

Messages and the error policy are those of :class:`~.base.BaseKafkaBackend`: only an error about
the message (too large, invalid, a bad timestamp) refuses the event; a delivery timeout, a
transport, authentication or fatal producer error makes the backend unavailable, saying what
failed by librdkafka's error code (:mod:`.librdkafka`). librdkafka reports each failed
connection attempt to ``error_cb``, about 20 a second, which logs each state once; its own log
lines go to the same logger, connection failures at DEBUG since ``error_cb`` has them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ...exceptions import BackendUnavailable
from ..base import masked
from .base import BaseKafkaBackend, Failures, Pending
from .failures import Problem, no_answer
from .messages import KafkaMessage

try:
    from confluent_kafka import KafkaError, KafkaException, Producer

    from .librdkafka import LOG, MESSAGE_ERROR_CODES, TOPIC_FAILURES, describe
except ImportError as exc:  # the extra is not installed: building the backend says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

logger = logging.getLogger(__name__)

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
#: While connecting, how long each wait for metadata lasts before librdkafka's errors are read.
CONNECT_WAIT_S: Final = 0.1


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
    reports_errors = True
    #: librdkafka's latest error (KafkaError) since the producer was built, reported as the
    #: cause when the cluster stays away, and whether every broker has failed since.
    _last_error: Any = None
    _all_down = False

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
            "logger": LOG,
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
        self._last_error, self._all_down = None, False
        producer = Producer(
            {**self._producer_config, "bootstrap.servers": ",".join(self._servers())}
        )
        try:
            self._await_topic(producer)
        except BackendUnavailable:
            self._discard(producer)
            raise
        return producer

    def _await_topic(self, producer: Any) -> None:
        """Wait until a broker gives the topic's metadata, which proves the cluster answers.

        Raises ``BackendUnavailable`` as soon as every broker has failed (``error_cb`` says so)
        or the topic cannot be used, and when nothing answers within ``send_timeout``.
        """
        deadline = time.monotonic() + self.send_timeout
        while (remaining := deadline - time.monotonic()) > 0:
            metadata = self._metadata(producer, min(CONNECT_WAIT_S, remaining))
            if metadata is None:
                if self._every_broker_failed():
                    raise self._gone()
                continue
            error = None if self._topic.fixed is None else metadata.topics[self.topic].error
            if error is None:
                return
            if error.code() in TOPIC_FAILURES:
                cause = KafkaException(error)
                raise self._outage(cause) from cause
            producer.poll(min(CONNECT_WAIT_S, remaining))  # a topic being created, say
        raise self._gone()

    def _metadata(self, producer: Any, timeout: float) -> Any:
        """Return the topic's metadata, or ``None`` if none came within ``timeout`` seconds."""
        try:
            return producer.list_topics(self._topic.fixed, timeout=timeout)  # None: the cluster's
        except KafkaException:
            producer.poll(0)  # serve error_cb, which tells whether every broker failed
            return None

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
                self._produce(message, report)
            except KafkaException as exc:
                failures.append((event, exc))
        remaining = self._flush()
        if remaining:
            self._producer.purge()  # dropped now, so that close() does not wait for them again
            raise self._gone(f"{remaining} messages unacknowledged")
        return failures

    def _flush(self) -> int:
        """Wait up to ``send_timeout`` for every message's outcome; return how many are left.

        Stops early when every broker fails meanwhile: waiting longer would only say less.
        """
        self._all_down = False
        deadline = time.monotonic() + self.send_timeout
        while remaining := self._producer.flush(
            max(min(CONNECT_WAIT_S, deadline - time.monotonic()), 0)
        ):
            if self._every_broker_failed() or time.monotonic() >= deadline:
                return int(remaining)
        return 0

    def _every_broker_failed(self) -> bool:
        return self._all_down and self._last_error is not None

    def _gone(self, detail: str = "") -> BackendUnavailable:
        """Return the error of a cluster that took nothing: how every broker failed, or no answer.

        The error is chained to librdkafka's latest one, if any.
        """
        error = self._last_error
        cause = None if error is None else KafkaException(error)
        if cause is not None and self._all_down:
            gone = self._outage(cause)
        else:
            latest = self._last_error_problem()
            more = "; ".join(str(part) for part in (detail, latest) if part)
            gone = self._unavailable(no_answer(self.send_timeout, ",".join(self._servers()), more))
        gone.__cause__ = cause
        return gone

    def _client_message_error(self, exc: Exception) -> bool:
        if not isinstance(exc, KafkaException) or not exc.args:
            return False
        error: KafkaError = exc.args[0]
        return not error.fatal() and error.code() in MESSAGE_ERROR_CODES

    def _client_problem(self, exc: Exception) -> Problem | None:
        if not isinstance(exc, KafkaException) or not exc.args:
            return None
        return describe(
            exc.args[0], self._topic.fixed or "", self.send_timeout, ",".join(self._servers())
        )

    def _last_error_problem(self) -> Problem | str | None:
        """Return what librdkafka's latest error says failed, or ``None`` if it reported none."""
        error = self._last_error
        return None if error is None else self._client_problem(KafkaException(error)) or error.str()

    def _produce(self, message: KafkaMessage, report: Callable[..., None]) -> None:
        """Queue one message, waiting (up to ``send_timeout``) while librdkafka's queue is full."""
        waited = 0.0
        while True:
            try:
                self._producer.produce(
                    message.topic or self.topic,
                    message.value,
                    message.key,
                    headers=message.headers,
                    on_delivery=report,
                )
                return
            except BufferError as exc:
                if waited >= self.send_timeout:
                    raise self._unavailable("librdkafka's queue stays full") from exc
                self._producer.poll(QUEUE_FULL_WAIT_S)
                waited += QUEUE_FULL_WAIT_S

    def _on_client_error(self, error: KafkaError) -> None:
        """Note librdkafka's error, the cause reported if the cluster stays away; log it once.

        ``_ALL_BROKERS_DOWN`` follows the error of the last broker to fail: it is not logged.
        """
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._all_down = True
            return
        self._last_error = error
        self._all_down = self._all_down or error.fatal()
        self._errors.error(error.code(), self._last_error_problem())

    def _discard(self, producer: Any) -> None:
        producer.purge()
        producer.poll(0)  # serve the purged messages' reports, so nothing refers to them


def _reporter(failures: Failures, event: Any) -> Callable[[Any, Any], None]:
    """Return a delivery callback appending ``event`` and its error to ``failures``."""

    def report(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            failures.append((event, KafkaException(error)))

    return report
