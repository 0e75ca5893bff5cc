"""Drill 10: webhook receivers that fail, hang, freeze, go away, and a worker killed mid-batch.

Every drill runs the real ``outbox_worker`` process against a real receiver on loopback: the
SDK-only receiver (``tests/webhooks/sdk_receiver.py``), steered through its behaviour file, or
the project's receiving view under gunicorn. The guarantees: nothing lost, no retry spent on an
outage, ``Retry-After`` honoured, duplicates within one batch per crash, each event handled
once by the receiver.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from django_broadcaster.models import OutboxEvent
from harness.process import Process
from tests.settings import WEBHOOK_SECRET
from tests.webhooks import HANDLED_TYPE
from tests.webhooks.servers import (
    free_port,
    handled_ids,
    sdk_received,
    start_sdk_receiver,
    start_view_receiver,
)

from .drill import DRILL_TIMEOUT_S, SteadyPublisher, poll, publish, published_count, report

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(DRILL_TIMEOUT_S),
    pytest.mark.postgres,  # three processes writing one SQLite file: not what the drills test
    pytest.mark.django_db(transaction=True),
]

SETTINGS = {"BATCH_SIZE": 100, "SEND_DEADLINE": 1}
OUTAGE_S = 30.0
FROZEN_S = 6.0
KILL_BATCH = 50


def webhook_backend(url: str, mode: str = "binary") -> dict[str, Any]:
    """Return a BACKENDS entry posting to ``url``, signed with the receivers' secret."""
    options = {"url": url, "secrets": [WEBHOOK_SECRET], "mode": mode}
    return {"hook": {"BACKEND": "django_broadcaster.backends.WebhookBackend", "OPTIONS": options}}


def retries_spent() -> int:
    return sum(OutboxEvent.objects.values_list("retry_count", flat=True))


def request_times(receiver: Process, status: int) -> list[float]:
    lines = receiver.lines(rf"^request \S+ {status}$")
    return [float(line.split()[1]) for line in lines]


def gaps_between_bursts(times: list[float]) -> list[float]:
    """Return the pauses between bursts of requests (requests under 0.5 s apart are a burst)."""
    ordered = sorted(times)
    return [b - a for a, b in zip(ordered, ordered[1:], strict=False) if b - a > 0.5]


def received_once(receiver: Process, ids: list[str]) -> None:
    # The receiver prints before it answers, but its output reaches us through a reader thread,
    # which a busy machine can hold back for seconds (10 s was not enough once on 2 busy cores).
    poll(lambda: len(sdk_received(receiver)) >= len(ids), 30, "the receiver's lines")
    received = [line.split()[1] for line in sdk_received(receiver)]
    assert sorted(received) == sorted(ids), "each event received exactly once"


@pytest.mark.parametrize(
    ("status", "retry_after"), [(500, None), (429, "2"), (503, "2")], ids=["500", "429", "503"]
)
def test_a_failing_receiver_defers_without_spending_retries(
    tmp_path: Path,
    workers: Callable[..., Process],
    status: int,
    retry_after: str | None,
) -> None:
    behaviour = tmp_path / "behaviour.json"
    behaviour.write_text(json.dumps({"status": status, "retry_after": retry_after}))
    port = free_port()
    with start_sdk_receiver(port, behaviour) as receiver:
        ids = publish(300, event_type=HANDLED_TYPE)
        worker = workers(backends=webhook_backend(f"http://127.0.0.1:{port}/"), settings=SETTINGS)
        worker.wait_ready()
        poll(lambda: len(request_times(receiver, status)) >= 12, 30, f"a few {status} answers")
        behaviour.unlink()
        poll(lambda: published_count() == len(ids), 60, "every event published")
        received_once(receiver, ids)
        gaps = gaps_between_bursts(request_times(receiver, status))
    assert retries_spent() == 0
    if retry_after:
        assert min(gaps) >= 1.9, f"pauses shorter than Retry-After: {gaps}"
    report("webhook-failing", f"{status}: pauses between bursts {[round(g, 1) for g in gaps]}")


def test_a_receiver_hanging_past_the_deadline_is_an_outage(
    tmp_path: Path, workers: Callable[..., Process]
) -> None:
    behaviour = tmp_path / "behaviour.json"
    behaviour.write_text(json.dumps({"status": 200, "hang_s": 3}))
    port = free_port()
    with start_sdk_receiver(port, behaviour) as receiver:
        ids = publish(200, event_type=HANDLED_TYPE)
        worker = workers(backends=webhook_backend(f"http://127.0.0.1:{port}/"), settings=SETTINGS)
        worker.wait_ready()
        poll(lambda: len(request_times(receiver, 200)) >= 2, 30, "hung requests")
        behaviour.unlink()
        poll(lambda: published_count() == len(ids), 60, "every event published")
        received_once(receiver, ids)
    assert retries_spent() == 0
    assert worker.lines(r"Backend 'hook' is unavailable .*(timed out|Timeout)")


def test_a_frozen_receiver_is_an_outage_and_loses_nothing(
    tmp_path: Path, workers: Callable[..., Process]
) -> None:
    """SIGSTOP the receiver: the kernel still takes connections and requests, nothing answers."""
    port = free_port()
    with start_sdk_receiver(port) as receiver:
        ids = publish(100, event_type=HANDLED_TYPE)
        worker = workers(backends=webhook_backend(f"http://127.0.0.1:{port}/"), settings=SETTINGS)
        poll(lambda: len(sdk_received(receiver)) > 0, 30, "delivery before the freeze")
        receiver.send_signal(signal.SIGSTOP)
        try:
            ids += publish(200, event_type=HANDLED_TYPE)
            time.sleep(FROZEN_S)  # the freeze itself: there is nothing to wait for
        finally:
            receiver.send_signal(signal.SIGCONT)
        poll(lambda: published_count() == len(ids), 60, "every event published")
        received_once(receiver, ids)
    assert retries_spent() == 0
    assert worker.lines(r"Backend 'hook' is unavailable .*(timed out|Timeout)")


@pytest.mark.slow
def test_the_view_receiver_down_30_s_loses_nothing(
    tmp_path: Path, workers: Callable[..., Process]
) -> None:
    port, handled = free_port(), tmp_path / "handled.txt"
    url = f"http://127.0.0.1:{port}/webhooks/"
    receiver = start_view_receiver(port, handled)
    worker = workers(backends=webhook_backend(url, "batched"), settings=SETTINGS)
    worker.wait_ready()
    with SteadyPublisher(per_tick=5, tick_s=0.1) as feed:
        poll(lambda: len(handled_ids(handled)) >= 50, 30, "delivery before the outage")
        receiver.stop()
        down = time.monotonic()
        time.sleep(OUTAGE_S)  # the outage itself: there is nothing to wait for
        receiver = start_view_receiver(port, handled)
        poll(lambda: len(handled_ids(handled)) > 0, 5, "the receiver back")
    try:
        ids = [i for _, i in feed.published]
        caught_up = poll(lambda: published_count() == len(ids), 60, "every event published")
        assert sorted(handled_ids(handled)) == sorted(ids), "each event handled exactly once"
        assert retries_spent() == 0
    finally:
        receiver.stop()
    report(
        "webhook-down",
        f"{time.monotonic() - down:.0f} s since the stop; {len(ids)} events at 50/s, "
        f"caught up {caught_up:.1f} s after the feed stopped, 0 retries spent",
    )


def test_a_worker_killed_mid_batch_resends_at_most_one_batch(
    tmp_path: Path, workers: Callable[..., Process]
) -> None:
    port, handled = free_port(), tmp_path / "handled.txt"
    url = f"http://127.0.0.1:{port}/webhooks/"
    # A deadline no batch misses on a busy machine: a late batch is re-sent too (docs), and
    # this drill counts only what the kill re-sends.
    settings = {"BATCH_SIZE": KILL_BATCH, "SEND_DEADLINE": 5, "LEASE_DURATION": 25}
    with start_view_receiver(port, handled) as receiver:
        ids = publish(1000, event_type=HANDLED_TYPE)
        first = workers(backends=webhook_backend(url), settings=settings)
        poll(lambda: len(handled_ids(handled)) >= 300, 60, "some events handled")
        first.send_signal(signal.SIGKILL)
        first.wait()
        workers(backends=webhook_backend(url), settings=settings)
        poll(lambda: published_count() == len(ids), 120, "every event published")
        requests = len(receiver.lines(r'"POST /webhooks/ HTTP/1.1" \d+'))
        duplicates = len(receiver.lines(r'"POST /webhooks/ HTTP/1.1" 409'))
        receiver.stop()
    assert sorted(handled_ids(handled)) == sorted(ids), "each event handled exactly once"
    resent = requests - len(ids)
    assert resent == duplicates <= KILL_BATCH
    report("webhook-kill", f"1000 events, SIGKILL mid-batch: {resent} sent twice (409), bound 50")
