"""What librdkafka's error codes mean to :class:`~.confluent.ConfluentKafkaBackend`.

Codes about one message refuse that event (:data:`MESSAGE_ERROR_CODES`); the others say what
failed between the producer and the cluster (:func:`describe`), which makes the backend
unavailable. Decided by code, never by librdkafka's text, which is only shown. Also where
librdkafka's own log lines go (:data:`LOG`). Imported only when confluent-kafka is installed.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from confluent_kafka import KafkaError

from .failures import (
    AUTHENTICATION,
    NOT_AUTHORIZED,
    TLS,
    UNREACHABLE,
    Problem,
    client_logger,
    no_answer,
    problem,
    unknown_topic,
)

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
#: What other codes say failed (a timeout or an unknown topic: see :func:`describe`).
PROBLEM_KINDS: Final = {
    KafkaError._TRANSPORT: UNREACHABLE,  # refused, reset, or no answer while connecting
    KafkaError._RESOLVE: UNREACHABLE,
    KafkaError._AUTHENTICATION: AUTHENTICATION,  # SASL refused, or not spoken by the listener
    KafkaError.SASL_AUTHENTICATION_FAILED: AUTHENTICATION,
    KafkaError.UNSUPPORTED_SASL_MECHANISM: AUTHENTICATION,
    KafkaError.ILLEGAL_SASL_STATE: AUTHENTICATION,
    KafkaError._SSL: TLS,
    KafkaError.TOPIC_AUTHORIZATION_FAILED: NOT_AUTHORIZED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: NOT_AUTHORIZED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: NOT_AUTHORIZED,
}
UNKNOWN_TOPIC_CODES: Final = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC}
)
TIMEOUT_CODES: Final = frozenset({KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT})
#: A topic's errors in metadata that waiting does not cure.
TOPIC_FAILURES: Final = UNKNOWN_TOPIC_CODES | {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.TOPIC_EXCEPTION,
}


def describe(error: KafkaError, topic: str, send_timeout: float, servers: str) -> Problem | None:
    """Return what ``error`` says failed, or ``None`` for a code of no known meaning."""
    code, detail = error.code(), error.str()
    if code in UNKNOWN_TOPIC_CODES:
        return unknown_topic(topic, detail)
    if code in TIMEOUT_CODES:
        return no_answer(send_timeout, servers, detail)
    kind = PROBLEM_KINDS.get(code)
    return None if kind is None else problem(kind, detail)


class LibrdkafkaLog:
    """librdkafka's ``logger``: its lines go to :data:`~.failures.client_logger`.

    A failed connection (facility ``FAIL``) reaches ``error_cb`` too, which logs it once per
    state, so its line is kept at DEBUG.
    """

    def log(self, level: int, message: str, *args: Any) -> None:
        """Log librdkafka's line ``message % args`` (``args`` start with its facility)."""
        if args and args[0] == "FAIL":
            level = logging.DEBUG
        client_logger.log(level, message, *args)


LOG: Final = LibrdkafkaLog()
