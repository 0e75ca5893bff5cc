"""Drill 5: SIGTERM in the middle of a batch.

The batch in hand is finished and recorded, the process exits 0 and leaves no event claimed.
If the batch cannot finish within ``SHUTDOWN_TIMEOUT`` (here: Redis frozen, a 30 s socket
timeout, a 1 s grace period), the worker releases its unrecorded claims, due again at once and
without a spent retry, and still exits 0.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest
from django.utils import timezone

from django_broadcaster.outbox.models import RELEASED, OutboxEvent, Status
from harness.process import Process

from .drill import (
    kafka_backend,
    poll,
    publish,
    published_count,
    redis_backend,
    report,
)
from .observe import TopicReader, stream_ids
from .services import RedisServer

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

EVENTS = 20_000
STOPS = 5
#: Each run is stopped once it has recorded a random number of events, up to this many: the
#: moment is set by the worker's progress, not by a clock, so that every stop comes mid-run on
#: a machine of any speed (five stops within half a second each drained all 20,000 events on a
#: fast one). Five runs then record far fewer than ``EVENTS``.
MOST_BEFORE_STOP = 1_000


def terminate_mid_run(run: Process, rng: random.Random) -> tuple[int, float]:
    """SIGTERM ``run`` once it has recorded a random number of events (1 to
    ``MOST_BEFORE_STOP``); return its exit code and how long it took to exit."""
    at_start = published_count()
    wanted = rng.randint(1, MOST_BEFORE_STOP)
    poll(lambda: published_count() - at_start >= wanted, 60, f"{wanted} recorded", every=0.05)
    stopped_at = time.monotonic()
    code = run.stop(timeout=30)
    return code, time.monotonic() - stopped_at


@pytest.mark.kafka
def test_sigterm_records_the_batch_in_hand_and_exits_0(
    workers: Callable[..., Process],
    redis_url: str,
    kafka_bootstrap_servers: str,
    unique_name: str,
    cleanup_stream: Callable[[str], str],
) -> None:
    rng = random.Random()
    publish(EVENTS)
    backends = {
        "redis": redis_backend(redis_url, cleanup_stream(unique_name)),
        "kafka": kafka_backend(kafka_bootstrap_servers, unique_name),
    }
    exits = []
    with TopicReader(kafka_bootstrap_servers, unique_name) as kafka:
        for _ in range(STOPS):
            run = workers(backends=backends, settings={"BATCH_SIZE": 100})
            code, stop_s = terminate_mid_run(run, rng)
            exits.append((code, stop_s))
            assert code == 0, run.tail()
            assert run.lines(r"Received SIGTERM"), run.tail()
            assert not run.lines(r"Released \d+ claimed"), run.tail()
            assert not OutboxEvent.objects.exclude(**RELEASED).exists()
            assert OutboxEvent.objects.filter(status=Status.PENDING).exists(), "stopped too late"
        rows = OutboxEvent.objects.filter(status=Status.PUBLISHED)
        published = {str(pk) for pk in rows.values_list("pk", flat=True)}
        kafka.wait_for(published, 30)
        kafka.wait_idle(2.0)
        in_kafka = set(kafka.ids)
    in_redis = set(stream_ids(redis_url, unique_name))

    report(
        "graceful stop",
        f"{STOPS} SIGTERMs mid-run: exit codes {[c for c, _ in exits]}, in "
        f"{max(s for _, s in exits):.2f} s at most; {len(published)} of {EVENTS} published, "
        f"redis has {len(in_redis)}, kafka {len(in_kafka)}",
    )
    # Recorded means: what reached the brokers is exactly what the outbox calls published.
    assert in_redis == published
    assert in_kafka == published
    assert 0 < len(published) < EVENTS
    assert set(OutboxEvent.objects.values_list("retry_count", flat=True)) == {0}


def test_a_batch_that_overstays_shutdown_timeout_is_released(
    workers: Callable[..., Process],
    own_redis: RedisServer,
) -> None:
    publish(5000)
    redis = redis_backend(own_redis.url, "drill", socket_timeout=30)
    # A send deadline longer than the drill keeps the batch in hand, as a slow handler would.
    patient = {"BATCH_SIZE": 100, "SHUTDOWN_TIMEOUT": 1, "SEND_DEADLINE": 600}
    run = workers(backends={"redis": redis}, settings=patient)
    poll(lambda: published_count() > 0, 60, "a batch recorded")
    own_redis.pause()

    # The batch in flight at the freeze may still get its answer (already in the socket) and be
    # recorded; the worker is stuck once a batch stays in flight with nothing recorded.
    def in_flight() -> bool:
        return OutboxEvent.objects.in_flight(timezone.now()).exists()

    for _ in range(5):
        poll(in_flight, 30, "a batch in flight")
        before = published_count()
        time.sleep(1.0)
        if published_count() == before:
            break
    assert published_count() == before, "the worker is not stuck on the frozen Redis"
    held = OutboxEvent.objects.in_flight(timezone.now()).count()
    stopped_at = time.monotonic()
    code = run.stop(timeout=30)
    stop_s = time.monotonic() - stopped_at

    report(
        "graceful stop",
        f"batch stuck on a frozen Redis: SIGTERM, exit {code} after {stop_s:.1f} s "
        f"(SHUTDOWN_TIMEOUT 1 s), {held} claimed events released",
    )
    assert code == 0, run.tail()
    assert stop_s < 10, run.tail()
    # The batch in hand, and the next one if it was claimed ahead meanwhile.
    released = run.lines(r"Released \d+ (claimed events|events claimed ahead)")
    assert sum(int(line.split("Released ")[1].split()[0]) for line in released) == held, run.tail()
    assert not OutboxEvent.objects.exclude(**RELEASED).exists()
    pending = OutboxEvent.objects.filter(status=Status.PENDING)
    assert pending.count() == OutboxEvent.objects.due(timezone.now()).count()
    assert set(OutboxEvent.objects.values_list("retry_count", flat=True)) == {0}
