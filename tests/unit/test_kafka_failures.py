"""What each Kafka client's errors say failed, and client errors logged once per state."""

from __future__ import annotations

import logging

import pytest

from django_broadcaster.backends.kafka import failures
from django_broadcaster.backends.kafka.failures import ErrorLog


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
