"""What each Kafka client's errors say failed, and client errors logged once per state.

The mapping is by exception type (kafka-python) and error code (librdkafka), so these tests
build the clients' own error values; the real failures behind them are provoked against a broker
in ``tests/integration/test_kafka_connection_errors.py``.
"""

from __future__ import annotations

import logging
import ssl

import pytest
from kafka import errors as kafka_errors

from django_broadcaster.backends.kafka import connecting, failures
from django_broadcaster.backends.kafka.failures import ErrorLog, Problem
from tests.integration.test_kafka_backend import require_confluent_kafka


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(record.levelname, record.getMessage()) for record in caplog.records]


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=failures.client_logger.name)
    return caplog


def test_a_repeated_error_is_logged_once_then_counted_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = ErrorLog("Backend 'kafka'", every_s=60, clock=clock)

    for second in range(0, 150, 5):  # 30 errors, 2 minutes and a half
        clock.now = second
        log.error("refused", "broker unreachable: refused")
    log.recovered()
    log.recovered()  # nothing failed since: silent

    assert messages(caplog) == [
        ("WARNING", "Backend 'kafka': broker unreachable: refused"),
        ("WARNING", "Backend 'kafka': still failing (13 times): broker unreachable: refused"),
        ("WARNING", "Backend 'kafka': still failing (25 times): broker unreachable: refused"),
        ("INFO", "Backend 'kafka': recovered after 30 errors."),
    ]


def test_each_state_is_logged_on_its_first_error_and_again_after_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = ErrorLog("Backend 'kafka'", scrub=lambda text: str(text).replace("pw", "***"))

    log.error("auth", "authentication failed (pw)")
    log.error("refused", "broker unreachable")
    log.error("auth", "authentication failed (pw)")
    log.recovered()
    log.error("auth", "authentication failed (pw)")

    assert [text for _, text in messages(caplog)] == [
        "Backend 'kafka': authentication failed (***)",
        "Backend 'kafka': broker unreachable",
        "Backend 'kafka': recovered after 3 errors.",
        "Backend 'kafka': authentication failed (***)",
    ]


def test_problems_read_as_what_failed_then_the_clients_words() -> None:
    assert str(failures.problem(failures.TLS, "certificate verify failed")) == (
        "TLS handshake failed: certificate verify failed"
    )
    assert (
        str(failures.no_answer(1.5, "a:9092,b:9092")) == "no answer within 1.5 s from a:9092,b:9092"
    )
    assert str(failures.no_answer(10, "a:9092", "2 messages unacknowledged")) == (
        "no answer within 10 s from a:9092; 2 messages unacknowledged"
    )
    unknown = failures.unknown_topic("orders", "Broker: Unknown topic or partition")
    assert unknown.kind == failures.UNKNOWN_TOPIC
    assert str(unknown).startswith("unknown topic 'orders': it does not exist")


def tls_failure() -> kafka_errors.KafkaConnectionError:
    """Return kafka-python's error for a failed TLS handshake, raised as kafka-python does."""
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed")
        except ssl.SSLError as exc:
            raise kafka_errors.KafkaConnectionError(f"Handshake failed: {exc}")  # noqa: B904
    except kafka_errors.KafkaConnectionError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (kafka_errors.KafkaConnectionError("111 ECONNREFUSED"), failures.UNREACHABLE),
        (kafka_errors.KafkaConnectionError("DNS Resolution failure"), failures.UNREACHABLE),
        (tls_failure(), failures.TLS),
        (kafka_errors.UnsupportedSaslMechanismError(), failures.AUTHENTICATION),
        (kafka_errors.SaslAuthenticationFailedError("bad password"), failures.AUTHENTICATION),
        (kafka_errors.TopicAuthorizationFailedError("orders"), failures.NOT_AUTHORIZED),
        (kafka_errors.ClusterAuthorizationFailedError(), failures.NOT_AUTHORIZED),
    ],
)
def test_kafka_python_errors_by_type(error: Exception, kind: str) -> None:
    found = connecting.describe(error, "bootstrap-1")
    assert found is not None
    assert found.kind == kind
    assert str(found).startswith(f"{kind}: bootstrap-1: ")
    assert type(error).__name__ in str(found)


def test_kafka_python_errors_of_no_known_meaning_are_left_as_they_are() -> None:
    assert connecting.describe(kafka_errors.MessageSizeTooLargeError()) is None
    assert connecting.describe(ValueError("a bug")) is None


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("_TRANSPORT", failures.UNREACHABLE),
        ("_RESOLVE", failures.UNREACHABLE),
        ("_AUTHENTICATION", failures.AUTHENTICATION),
        ("SASL_AUTHENTICATION_FAILED", failures.AUTHENTICATION),
        ("UNSUPPORTED_SASL_MECHANISM", failures.AUTHENTICATION),
        ("_SSL", failures.TLS),
        ("TOPIC_AUTHORIZATION_FAILED", failures.NOT_AUTHORIZED),
        ("UNKNOWN_TOPIC_OR_PART", failures.UNKNOWN_TOPIC),
        ("_UNKNOWN_TOPIC", failures.UNKNOWN_TOPIC),
        ("_MSG_TIMED_OUT", failures.NO_ANSWER),
    ],
)
def test_librdkafka_errors_by_code(code: str, kind: str) -> None:
    require_confluent_kafka()
    from confluent_kafka import KafkaError

    from django_broadcaster.backends.kafka import librdkafka

    error = KafkaError(getattr(KafkaError, code), "the client's words")
    found = librdkafka.describe(error, "orders", 2, "a:9092")

    assert isinstance(found, Problem)
    assert found.kind == kind
    assert "the client's words" in str(found)


def test_librdkafka_codes_of_no_known_meaning_are_left_as_they_are() -> None:
    require_confluent_kafka()
    from confluent_kafka import KafkaError

    from django_broadcaster.backends.kafka import librdkafka

    assert librdkafka.describe(KafkaError(KafkaError._FATAL), "orders", 2, "a:9092") is None
