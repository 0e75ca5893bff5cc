"""Both Kafka backends say what failed when they cannot connect, at once, and log it once.

The failures are real: a closed port, a name that does not resolve, SASL or TLS configured
against the plaintext listener of the broker the suite starts (Tansu), a topic that broker is
told not to create, and a listener that takes connections but never answers (a slow broker, the
one case that stays a timeout). A definitive failure must be known well within the worker's
``SEND_DEADLINE`` (2 s by default), or the worker records a bare timeout instead.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_broadcaster.backends.kafka import BaseKafkaBackend, ConfluentKafkaBackend
from django_broadcaster.conf import get_settings
from django_broadcaster.exceptions import BackendUnavailable
from django_broadcaster.models import Status
from django_broadcaster.outbox.health import outbox_status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker import Worker
from tests.factories import published_event
from tests.faults.services import TansuBroker
from tests.integration.test_kafka_backend import backend_class, closed_port  # noqa: F401

#: What a backend may wait for the brokers in these tests: long enough to tell "at once" apart.
SEND_TIMEOUT_S = 4.0
#: A definitive failure is reported within this, well inside the default SEND_DEADLINE (2 s).
AT_ONCE_S = 1.5
UNRESOLVABLE = "no-such-host.invalid:9092"  # .invalid never resolves (RFC 6761)
#: The loggers of the backends and of the client libraries.
CLIENTS = ("django_broadcaster.backends", "kafka")
SASL = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "PLAIN",
    "sasl_plain_username": "shop",
    "sasl_plain_password": "S3cret-Pa55word",
}


def failure(
    call: Callable[[], object], within: float = SEND_TIMEOUT_S + 3
) -> tuple[str, float, BaseException | None]:
    """Run ``call``, which must raise ``BackendUnavailable``; return its message, duration, cause.

    The call runs on a thread, so that one which never returns fails the test after ``within``
    seconds instead of hanging it.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test below
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    took = time.monotonic() - started
    assert outcome, f"the call had not returned after {within:g} s"
    error = outcome[0]
    assert isinstance(error, BackendUnavailable), f"expected BackendUnavailable, got {error!r}"
    assert error.destination == "kafka"
    return str(error), took, error.__cause__


@pytest.fixture
def kafka_backend(backend_class: type[BaseKafkaBackend]) -> Iterator[Callable[..., Any]]:  # noqa: F811
    """Return a builder of backends of each class in turn; close them all at teardown."""
    built: list[BaseKafkaBackend] = []

    def make(servers: str, send_timeout: float = SEND_TIMEOUT_S, **options: Any) -> Any:
        backend = backend_class(
            "kafka", bootstrap_servers=servers, topic="errors", send_timeout=send_timeout, **options
        )
        built.append(backend)
        return backend

    yield make
    for backend in built:
        backend.close()


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """Yield the address of a socket that accepts connections and never answers: a slow broker."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel completes connections; nobody reads them
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def client_error(backend: BaseKafkaBackend) -> type[Exception]:
    """Return the class of the client's own errors, which a ``BackendUnavailable`` chains."""
    if isinstance(backend, ConfluentKafkaBackend):
        from confluent_kafka import KafkaException

        return KafkaException
    from kafka.errors import KafkaError

    return KafkaError


@pytest.mark.parametrize("call", ["open", "send_batch"])
def test_a_refused_connection_is_reported_at_once(
    kafka_backend: Callable[..., Any], call: str
) -> None:
    address = f"127.0.0.1:{closed_port()}"
    backend = kafka_backend(address)
    attempt = backend.open if call == "open" else lambda: backend.send_batch([published_event()])

    message, took, cause = failure(attempt)

    assert took < AT_ONCE_S, message
    assert "is unavailable: broker unreachable" in message
    assert address in message
    assert isinstance(cause, client_error(backend))
    backend.close()
    backend.close()


def test_a_name_that_does_not_resolve_is_reported_at_once(
    kafka_backend: Callable[..., Any],
) -> None:
    backend = kafka_backend(UNRESOLVABLE)

    message, took, _cause = failure(backend.open)

    assert took < AT_ONCE_S, message
    assert "is unavailable: broker unreachable" in message
    assert "no-such-host.invalid" in message


@pytest.mark.kafka
def test_sasl_against_a_listener_without_it_is_an_authentication_failure(
    kafka_backend: Callable[..., Any], kafka_bootstrap_servers: str
) -> None:
    backend = kafka_backend(kafka_bootstrap_servers, producer_options=SASL)

    message, took, _cause = failure(backend.open)

    assert took < AT_ONCE_S, message
    assert "is unavailable: authentication failed" in message
    assert SASL["sasl_plain_password"] not in message


@pytest.mark.kafka
def test_tls_against_a_plaintext_listener_ends_within_send_timeout(
    kafka_backend: Callable[..., Any], kafka_bootstrap_servers: str
) -> None:
    """Tansu waits for more bytes after a TLS hello, where Apache Kafka closes the connection.

    kafka-python's TLS handshake has no timeout of its own: the backend must bound it.
    """
    backend = kafka_backend(
        kafka_bootstrap_servers, send_timeout=1.0, producer_options={"security_protocol": "SSL"}
    )

    before = set(threading.enumerate())
    for _attempt in range(3):  # later attempts wait for the same connection, not a new one
        message, took, _cause = failure(lambda: backend.send_batch([published_event()]), 4)
        assert took < 2.5, message
        assert "is unavailable:" in message
    started = [t for t in set(threading.enumerate()) - before if t.name.endswith("-connect")]
    assert len(started) <= 1


def test_a_broker_that_does_not_answer_is_still_a_timeout(
    kafka_backend: Callable[..., Any], silent_listener: str
) -> None:
    backend = kafka_backend(silent_listener, send_timeout=1.0)

    message, took, _cause = failure(backend.open, within=4)

    assert 0.9 < took < 2.5, message
    assert f"is unavailable: no answer within 1 s from {silent_listener}" in message


@pytest.mark.kafka
def test_a_topic_the_broker_does_not_create_is_reported_at_once(
    kafka_bootstrap_servers: str, unique_name: str
) -> None:
    """confluent-kafka only: Tansu creates topics for kafka-python's metadata requests anyway."""
    backend = ConfluentKafkaBackend(
        "kafka",
        bootstrap_servers=kafka_bootstrap_servers,
        topic=unique_name,
        send_timeout=SEND_TIMEOUT_S,
        producer_options={"allow.auto.create.topics": False},
    )
    try:
        message, took, _cause = failure(lambda: backend.send_batch([published_event()]))
    finally:
        backend.close()

    assert took < AT_ONCE_S, message
    assert f"is unavailable: unknown topic {unique_name!r}" in message


def client_lines(caplog: pytest.LogCaptureFixture, loggers: tuple[str, ...] = CLIENTS) -> list[str]:
    """Return the WARNING and ERROR lines of ``loggers``: the backends' and the clients'."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith(loggers)
    ]


def test_a_failure_that_repeats_is_logged_once(
    kafka_backend: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = kafka_backend(f"127.0.0.1:{closed_port()}", send_timeout=2.0)

    for _attempt in range(3):
        failure(backend.open)

    lines = client_lines(caplog)
    assert len(lines) == 1, f"{len(lines)} lines, the first: {lines[:3]}"
    assert "broker unreachable" in lines[0]


@pytest.mark.kafka
def test_a_broker_that_goes_away_is_reported_then_its_recovery_logged(
    kafka_backend: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A broker of this test's own, stopped after the producer has connected, then restarted.

    confluent-kafka tells at once that every broker is gone. kafka-python's producer only times
    out, while its own thread logs each reconnection; the next attempt, with a new producer,
    tells what failed at once.
    """
    caplog.set_level(logging.DEBUG)
    with TansuBroker() as broker:  # started
        backend = kafka_backend(broker.bootstrap_servers, send_timeout=2.0)
        assert backend.send_batch([published_event()]) == {}
        broker.stop(signal.SIGKILL)

        _message, took, _cause = failure(lambda: backend.send_batch([published_event()]))
        assert took < (AT_ONCE_S if isinstance(backend, ConfluentKafkaBackend) else 3.0)
        message, took, _cause = failure(lambda: backend.send_batch([published_event()]))
        assert took < AT_ONCE_S, message
        assert f"is unavailable: broker unreachable: {broker.bootstrap_servers}" in message or (
            "is unavailable: broker unreachable: KafkaConnectionError" in message
        )

        broker.start()
        assert backend.send_batch([published_event()]) == {}

    ours = client_lines(caplog, ("django_broadcaster.backends",))
    expected = 1 if isinstance(backend, ConfluentKafkaBackend) else 2  # the timeout, the cause
    assert len(ours) == expected, "\n".join(ours)
    assert "recovered after" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_worker_records_what_failed_and_outbox_status_shows_it(
    backend_class: type[BaseKafkaBackend],  # noqa: F811
) -> None:
    """Issue 24, item 11: with the defaults (``send_timeout`` 10 s, ``SEND_DEADLINE`` 2 s) a
    refused connection was recorded as "timeout: no answer within 2 s"."""
    address = f"127.0.0.1:{closed_port()}"
    backend = backend_class("kafka", bootstrap_servers=address, topic="errors")
    first = publisher.publish_event("order.created", "shop", {"n": 1})
    worker = Worker(config=get_settings(), registry=EventRegistry(), backends={"kafka": backend})
    try:
        worker.run_once()
        second = publisher.publish_event("order.created", "shop", {"n": 2})
        worker.run_once()  # the backend is paused now: the event waits, saying why
    finally:
        worker.close()

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.retry_count) == (Status.PENDING, 0)
    assert first.last_error.startswith("kafka: unavailable: Backend 'kafka': Kafka at ")
    assert f"{address} is unavailable: broker unreachable" in first.last_error
    assert second.last_error.startswith("kafka: backend paused: Backend 'kafka': Kafka at ")
    assert "broker unreachable" in second.last_error
    reasons = {reason.reason: reason.count for reason in outbox_status().waiting_reasons}
    assert reasons == {first.last_error: 1, second.last_error: 1}
