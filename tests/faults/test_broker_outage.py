"""Drill 2: a broker goes away (stopped, or frozen) while events keep coming.

An outage is not an event's fault: nothing may be lost, no event may spend a retry, the other
destination must keep receiving, and delivery must resume by itself once the broker is back.
Each drill feeds the outbox steadily (100 events/s) from before the outage until after it.

Each drill runs once per module (a module-scoped fixture) and the tests below check one
guarantee each on what it observed, so that a broken guarantee does not hide the others.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from django_broadcaster.models import OutboxEvent, Status
from harness.process import Process

from .drill import (
    DRILL_TIMEOUT_S,
    KAFKA_ENGINES,
    Scale,
    SteadyPublisher,
    kafka_backend,
    poll,
    published_count,
    redis_backend,
    report,
    start_worker,
    status_counts,
)
from .observe import Deliveries, DestinationReader, StreamReader, TopicReader, stream_ids
from .services import RedisServer, TansuBroker

# django_db makes pytest-django create the test database, which the module-scoped drills use.
pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(DRILL_TIMEOUT_S),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

WARM_UP_S = 3.0
#: After the broker is back, how long the feed goes on (delivery must catch up meanwhile).
AFTERWARDS_S = 3.0
SETTINGS = {"BATCH_SIZE": 100}
#: How far behind the healthy destination may fall during an outage: a little more than the
#: Kafka backend's send_timeout (10 s), the longest a single call may block the worker.
LAG_LIMIT_S = 15.0
#: The healthy destination must receive something in every slice of this length.
SLICE_S = 5.0
FROZEN_SOCKET_TIMEOUT_S = 2.0


@dataclass
class OutageDrill:
    """What one outage drill observed; the tests assert on it."""

    broker: str
    healthy: str
    ids: list[str]
    statuses: dict[str, int]
    charged: int
    deliveries: list[Deliveries]
    published_during: int
    worst_lag_s: float
    quiet_slices: int
    longest_silence_s: float
    caught_up_s: float
    exit_code: int
    run: Process

    def unavailable_lines(self) -> list[str]:
        """Return the worker's log lines saying the broker's backend was paused."""
        return self.run.lines(rf"Backend '{self.broker}' is unavailable")

    def pauses_over_when_logged(self) -> list[str]:
        """Return the breaker lines whose pause had ended before the line was even logged.

        Such a pause skips nothing: the next batch calls the broken backend again at once.
        """
        late = []
        for line in self.unavailable_lines():
            logged = datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
            until = re.search(r"pausing it until (\S+?)\+00:00", line)
            assert until is not None, line
            if datetime.fromisoformat(until.group(1)) + timedelta(seconds=1) <= logged:
                late.append(line)
        return late

    def report(self, label: str, outage_s: float) -> None:
        """Put the drill's figures in the run's summary."""
        report(
            label,
            f"{outage_s:.0f} s; {len(self.ids)} events at 100/s; {self.healthy} got "
            f"{self.published_during} events published meanwhile, worst lag "
            f"{self.worst_lag_s:.1f} s, {self.quiet_slices} silent {SLICE_S:.0f}-s slices, "
            f"longest silence {self.longest_silence_s:.1f} s",
        )
        report(
            label,
            f"caught up {self.caught_up_s:.1f} s after the feed stopped; "
            f"{len(self.unavailable_lines())} breaker warnings "
            f"({len(self.pauses_over_when_logged())} with a pause already over); "
            f"{self.deferrals()} deferrals; statuses {self.statuses}, {self.charged} retries spent",
        )
        report(label, "; ".join(d.summary() for d in self.deliveries))

    def deferrals(self) -> int:
        """Return how many times the worker deferred a row, from its final statistics line."""
        stats = self.run.lines(r"Outbox worker stopped")
        if not stats:
            return -1
        deferred = re.search(r"(\d+) deferred", stats[-1])
        return int(deferred[1]) if deferred else 0


def lag_during(
    feed: SteadyPublisher, reader: DestinationReader, start: float, end: float
) -> tuple[int, float]:
    """Return (events published in [start, end), the worst delivery lag among them).

    The lag of an event runs from its publication to its first copy being read from the
    destination; an event not read yet counts with its wait until ``end``.
    """
    window = [(t, i) for t, i in feed.published if start <= t < end]
    lags = [(reader.arrived(i) or end) - t for t, i in window]
    return len(window), max(lags, default=0.0)


def quiet_slices(reader: DestinationReader, start: float, end: float) -> int:
    """Return how many ``SLICE_S`` slices of [start, end) passed without a new arrival."""
    arrivals = sorted(t for i in set(reader.ids) if (t := reader.arrived(i)) is not None)
    edges = [start + n * SLICE_S for n in range(int((end - start) // SLICE_S) + 1)]
    return sum(1 for a, b in pairwise(edges) if not any(a <= t < b for t in arrivals))


def longest_silence(reader: DestinationReader, start: float, end: float) -> float:
    """Return the longest stretch of [start, end) in which no new event arrived."""
    arrivals = sorted(t for i in set(reader.ids) if (t := reader.arrived(i)) is not None)
    moments = [start, *(t for t in arrivals if start < t < end), end]
    return max(b - a for a, b in pairwise(moments))


def conclude(
    run: Process,
    feed: SteadyPublisher,
    healthy: DestinationReader,
    window: tuple[float, float],
    **observed: Any,
) -> dict[str, Any]:
    """Wait for the outbox to catch up, stop the worker, and collect what the tests check."""
    ids = feed.ids()
    caught_up_s = poll(lambda: published_count() == len(ids), 120, "every event published")
    assert run.alive, run.tail()
    published_during, worst_lag_s = lag_during(feed, healthy, *window)
    return {
        "ids": ids,
        "statuses": status_counts(),
        "charged": OutboxEvent.objects.exclude(retry_count=0).count(),
        "published_during": published_during,
        "worst_lag_s": worst_lag_s,
        "quiet_slices": quiet_slices(healthy, *window),
        "longest_silence_s": longest_silence(healthy, *window),
        "caught_up_s": caught_up_s,
        "exit_code": run.stop(),
        "run": run,
        **observed,
    }


@pytest.fixture(scope="module")
def drill_context(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Give a module-scoped drill the test database and a log directory; empty the outbox after."""
    with django_db_blocker.unblock():
        try:
            yield tmp_path_factory.mktemp("outage")
        finally:
            OutboxEvent.objects.all().delete()


def start_outage_worker(log_dir: Path, name: str, backends: dict[str, Any]) -> Process:
    """Start the drill's worker (UTC timestamps in its log, for the breaker checks)."""
    return start_worker(log_dir, name, backends=backends, settings=SETTINGS, env={"TZ": "UTC"})


# --- Redis stopped ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_outage(scale: Scale, drill_context: Path) -> OutageDrill:
    """Stop the drill's own Redis for ``scale.outage_s`` mid-run, then start it again.

    Redis keeps an append-only file, so its stream survives the restart and can be read whole.
    The healthy destination is a topic of the shared Kafka broker.
    """
    with RedisServer() as server:
        # stop(): SIGTERM, Redis writes its append-only file and exits
        drill = _interrupt_redis(
            server, drill_context, "redis-stopped", server.stop, server.start, scale.outage_s, {}
        )
    drill.report("redis stopped", scale.outage_s)
    return drill


def _interrupt_redis(
    server: RedisServer,
    drill_context: Path,
    name: str,
    interrupt: Callable[[], None],
    restore: Callable[[], None],
    seconds: float,
    redis_options: dict[str, Any],
) -> OutageDrill:
    """Run the worker on Redis + Kafka, ``interrupt`` Redis for ``seconds``, then ``restore`` it."""
    servers, topic = os.environ["KAFKA_BOOTSTRAP_SERVERS"], f"faults-{uuid.uuid4().hex[:12]}"
    backends = {
        "redis": redis_backend(server.url, "drill", **redis_options),
        "kafka": kafka_backend(servers, topic),
    }
    run = start_outage_worker(drill_context, name, backends)
    try:
        with TopicReader(servers, topic) as kafka, SteadyPublisher() as feed:
            poll(lambda: kafka.count() > 0, 60, "first deliveries")
            time.sleep(WARM_UP_S)
            interrupt()
            down_at = time.monotonic()
            time.sleep(seconds)
            up_at = time.monotonic()
            restore()
            time.sleep(AFTERWARDS_S)
            feed.stop()
            observed = conclude(run, feed, kafka, (down_at, up_at))
            kafka.wait_for(observed["ids"], 30)
        ids = observed["ids"]
        deliveries = [
            Deliveries.of("redis", stream_ids(server.url, "drill"), ids),
            Deliveries.of("kafka", kafka.ids, ids),
        ]
    finally:
        run.close()
    return OutageDrill(broker="redis", healthy="kafka", deliveries=deliveries, **observed)


@pytest.mark.kafka
def test_redis_outage_loses_no_event(redis_outage: OutageDrill) -> None:
    assert_nothing_lost(redis_outage)


@pytest.mark.kafka
def test_redis_outage_spends_no_retry(redis_outage: OutageDrill) -> None:
    assert redis_outage.charged == 0, redis_outage.statuses


@pytest.mark.kafka
def test_redis_outage_kafka_keeps_receiving(redis_outage: OutageDrill) -> None:
    assert_kept_receiving(redis_outage)


@pytest.mark.kafka
def test_redis_outage_pauses_the_backend_and_logs_once_per_trial(
    redis_outage: OutageDrill, scale: Scale
) -> None:
    assert_breaker_paused(redis_outage, scale.outage_s)


# --- Kafka stopped ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(KAFKA_ENGINES))
def kafka_outage(request: pytest.FixtureRequest, scale: Scale, drill_context: Path) -> OutageDrill:
    """Stop the drill's own Tansu for ``scale.outage_s`` mid-run, then start it again.

    The drill runs once with each Kafka backend (``request.param`` names its client library).

    Tansu keeps messages in memory only: a restarted broker is empty. So Kafka is read twice:
    ``before`` reads the first broker's topic until the moment it is stopped, ``after`` reads the
    restarted broker's topic. To make ``before`` complete, the worker is frozen (SIGSTOP) just
    before the broker is stopped, ``before`` reads until the topic has been quiet for two
    seconds (nothing else writes to it), then the broker is stopped and the worker thawed
    (SIGCONT), in the middle of whatever it was doing. Every event must be in the union of the
    two reads. The healthy destination is a stream of the shared Redis.
    """
    url, stream = os.environ["REDIS_URL"], f"faults-{uuid.uuid4().hex[:12]}"
    with TansuBroker() as broker:
        servers = broker.bootstrap_servers
        kafka = kafka_backend(servers, "drill", backend=KAFKA_ENGINES[request.param])
        backends = {"redis": redis_backend(url, stream), "kafka": kafka}
        run = start_outage_worker(drill_context, f"kafka-stopped-{request.param}", backends)
        before, after = TopicReader(servers, "drill"), TopicReader(servers, "drill")
        try:
            with StreamReader(url, stream) as redis, before, SteadyPublisher() as feed:
                poll(lambda: before.count() > 0 and redis.count() > 0, 60, "first deliveries")
                time.sleep(WARM_UP_S)
                run.send_signal(signal.SIGSTOP)
                before.wait_idle(2.0)
                before.stop()
                broker.stop()
                run.send_signal(signal.SIGCONT)
                down_at = time.monotonic()
                time.sleep(scale.outage_s)
                up_at = time.monotonic()
                broker.start()
                after.start()
                time.sleep(AFTERWARDS_S)
                feed.stop()
                observed = conclude(run, feed, redis, (down_at, up_at))
                ids = observed["ids"]
                after.wait_for(set(ids) - set(before.ids), 30)
                after.stop()
            deliveries = [
                Deliveries.of("redis", stream_ids(url, stream), ids),
                Deliveries.of("kafka", before.ids + after.ids, ids),
            ]
            report(
                f"kafka stopped ({request.param})",
                f"read {len(before.ids)} from the first broker, {len(after.ids)} after restart",
            )
        finally:
            run.close()
            _delete_stream(url, stream)
    drill = OutageDrill(broker="kafka", healthy="redis", deliveries=deliveries, **observed)
    drill.report(f"kafka stopped ({request.param})", scale.outage_s)
    return drill


@pytest.mark.redis
def test_kafka_outage_loses_no_event(kafka_outage: OutageDrill) -> None:
    assert_nothing_lost(kafka_outage)


@pytest.mark.redis
def test_kafka_outage_spends_no_retry(kafka_outage: OutageDrill) -> None:
    assert kafka_outage.charged == 0, kafka_outage.statuses


@pytest.mark.redis
def test_kafka_outage_redis_keeps_receiving(kafka_outage: OutageDrill) -> None:
    assert_kept_receiving(kafka_outage)


@pytest.mark.redis
def test_kafka_outage_pauses_the_backend_and_logs_once_per_trial(
    kafka_outage: OutageDrill, scale: Scale
) -> None:
    assert_breaker_paused(kafka_outage, scale.outage_s)


# --- Redis frozen ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_frozen(scale: Scale, drill_context: Path) -> OutageDrill:
    """Freeze the drill's own Redis (SIGSTOP) for ``scale.stall_s``, then thaw it (SIGCONT).

    A frozen Redis keeps its port and accepts connections, but never answers: every call ends
    in the client's socket timeout (2 s here). The healthy destination is shared Kafka.
    """
    with RedisServer() as server:
        drill = _interrupt_redis(
            server,
            drill_context,
            "redis-frozen",
            server.pause,
            server.resume,
            scale.stall_s,
            {"socket_timeout": FROZEN_SOCKET_TIMEOUT_S},
        )
    drill.report("redis frozen", scale.stall_s)
    return drill


@pytest.mark.kafka
def test_frozen_redis_loses_no_event(redis_frozen: OutageDrill) -> None:
    assert_nothing_lost(redis_frozen)


@pytest.mark.kafka
def test_frozen_redis_spends_no_retry(redis_frozen: OutageDrill) -> None:
    assert redis_frozen.charged == 0, redis_frozen.statuses


@pytest.mark.kafka
def test_frozen_redis_produces_logged_timeouts_never_a_hang(redis_frozen: OutageDrill) -> None:
    timeouts = [line for line in redis_frozen.unavailable_lines() if "imeout" in line]
    assert timeouts, redis_frozen.run.tail()
    assert redis_frozen.exit_code == 0, redis_frozen.run.tail()


@pytest.mark.kafka
def test_frozen_redis_kafka_keeps_receiving(redis_frozen: OutageDrill) -> None:
    assert_kept_receiving(redis_frozen)


@pytest.mark.kafka
def test_frozen_redis_pauses_the_backend_and_logs_once_per_trial(
    redis_frozen: OutageDrill, scale: Scale
) -> None:
    assert_breaker_paused(redis_frozen, scale.stall_s)


# --- the guarantees --------------------------------------------------------------------------


def assert_nothing_lost(drill: OutageDrill) -> None:
    """Every event published, and read from every destination."""
    assert drill.statuses == {Status.PUBLISHED: len(drill.ids)}
    for delivered in drill.deliveries:
        assert not delivered.missing, delivered.summary()
        assert not delivered.unexpected, delivered.summary()
    assert drill.exit_code == 0, drill.run.tail()


def assert_kept_receiving(drill: OutageDrill) -> None:
    """The healthy destination got events all through the outage, and never fell far behind."""
    assert drill.published_during > 0
    assert drill.quiet_slices == 0, (
        f"{drill.healthy} got nothing for {drill.quiet_slices} {SLICE_S:.0f}-second slices"
    )
    assert drill.worst_lag_s < LAG_LIMIT_S, f"{drill.healthy} fell {drill.worst_lag_s:.1f} s behind"


def assert_breaker_paused(drill: OutageDrill, outage_s: float) -> None:
    """Each failed trial paused the backend for a while: one warning per trial, not per event."""
    lines = drill.unavailable_lines()
    assert lines, drill.run.tail()
    late = drill.pauses_over_when_logged()
    assert not late, "pause already over when logged:\n" + "\n".join(late)
    assert len(lines) <= outage_s / 2, "\n".join(lines)


def _delete_stream(url: str, stream: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.delete(stream)
    client.close()
