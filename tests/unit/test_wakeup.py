"""The idle wait: polling without LISTEN, and an interrupt that ends it at once."""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connections

from django_broadcaster.worker.wakeup import Wakeup

#: Far longer than any test may take: a wait that lasts it has failed.
LONG_S = 60.0


@pytest.fixture
def polling() -> Iterator[Wakeup]:
    wakeup = Wakeup(False, timedelta(seconds=1), timedelta(seconds=30))
    yield wakeup
    wakeup.close()


def test_without_listen_a_wait_times_out_and_opens_no_connection(polling: Wakeup) -> None:
    assert polling.wait(0.01) is False
    assert polling.listener is None


def test_interrupt_ends_a_wait_in_progress(polling: Wakeup) -> None:
    started = time.monotonic()
    threading.Thread(target=polling.interrupt).start()
    assert polling.wait(LONG_S) is False
    assert time.monotonic() - started < LONG_S / 2


def test_after_an_interrupt_every_wait_returns_at_once(polling: Wakeup) -> None:
    polling.interrupt()
    started = time.monotonic()
    assert [polling.wait(LONG_S) for _ in range(3)] == [False, False, False]
    assert time.monotonic() - started < LONG_S / 2


def test_close_is_safe_twice_and_before_any_wait(polling: Wakeup) -> None:
    polling.close()
    polling.close()
    polling.interrupt()


@pytest.mark.django_db
def test_on_databases_other_than_postgresql_the_worker_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connections["default"], "vendor", "sqlite")  # whatever the test runs on
    wakeup = Wakeup(True, timedelta(seconds=1), timedelta(seconds=30))
    try:
        assert wakeup.wait(0.01) is False
        assert wakeup.listener is None
    finally:
        wakeup.close()
