"""What the drills share: worker processes with their logs, outbox counts, a steady publisher.

The processes and the polling are :mod:`harness`'s, shared with the other tests and the
benchmarks; what is here adds the drills' settings, logs and outbox descriptions to them.

Figures measured by a drill go to :func:`report`; ``tests/faults/conftest.py`` prints them at the
end of the run, so every CI log carries the numbers that ``docs/reliability.md`` quotes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection
from django.db.models import Count

from django_broadcaster.events import CloudEvent
from django_broadcaster.outbox.models import RELEASED, OutboxEvent, Status
from django_broadcaster.publishers import publisher
from harness import polling
from harness.process import Process
from tests import workers as test_workers

#: Lines for the end-of-run summary, as (drill, text).
FIGURES: list[tuple[str, str]] = []

#: Quick worker settings (seconds) that the drills start from.
FAST = {"POLL_INTERVAL": 0.1, "BREAKER_BASE_DELAY": 0.5, "BREAKER_MAX_DELAY": 5}

REDIS_BACKEND = "django_broadcaster.backends.RedisStreamBackend"
KAFKA_BACKEND = "django_broadcaster.backends.KafkaBackend"
#: The Kafka backends by the client library they use.
KAFKA_ENGINES = {
    "kafka-python": KAFKA_BACKEND,
    "confluent-kafka": "django_broadcaster.backends.ConfluentKafkaBackend",
}


def report(drill: str, text: str) -> None:
    """Keep a measured figure for the end-of-run summary (and print it, for ``pytest -s``)."""
    FIGURES.append((drill, text))
    print(f"[{drill}] {text}")


@dataclass(frozen=True)
class Scale:
    """How big the drills are: the CI default, or ``FAULTS_SCALE=full`` on demand."""

    name: str
    crash_events: int
    crash_kills: int
    concurrency_events: int
    concurrency_workers: int
    outage_s: float
    stall_s: float

    @classmethod
    def from_environment(cls) -> Scale:
        """Return the scale ``FAULTS_SCALE`` names (``ci``, the default, or ``full``)."""
        name = os.environ.get("FAULTS_SCALE", "ci")
        if name not in SCALES:
            raise ValueError(f"FAULTS_SCALE must be one of {sorted(SCALES)}, got {name!r}")
        return SCALES[name]


#: pytest-timeout's limit for one drill (the suite's default, 300 s, is too short at full scale).
DRILL_TIMEOUT_S = 1800 if os.environ.get("FAULTS_SCALE") == "full" else 300

SCALES = {
    "ci": Scale("ci", 20_000, 10, 50_000, 4, outage_s=30, stall_s=15),
    "full": Scale("full", 100_000, 25, 200_000, 4, outage_s=60, stall_s=40),
}


def redis_backend(url: str, stream: str, **options: Any) -> dict[str, Any]:
    """Return a BACKENDS entry for a Redis stream that keeps every entry."""
    return {
        "BACKEND": REDIS_BACKEND,
        "OPTIONS": {"url": url, "stream_name": stream, "max_len": None, **options},
    }


def kafka_backend(
    servers: str, topic: str, *, backend: str = KAFKA_BACKEND, **options: Any
) -> dict[str, Any]:
    """Return a BACKENDS entry for a Kafka topic, by default through kafka-python."""
    return {
        "BACKEND": backend,
        "OPTIONS": {"bootstrap_servers": servers, "topic": topic, **options},
    }


def start_worker(
    log_dir: Path,
    name: str,
    *args: str,
    backends: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Process:
    """Start one ``outbox_worker`` process of a drill, on :data:`FAST` settings unless overridden.

    Its output is also kept in ``log_dir/<name>.log``, for a post-mortem.
    """
    return test_workers.start_worker(
        *args,
        backends=backends,
        settings={**FAST, **(settings or {})},
        env=env,
        name=name,
        log=log_dir / f"{name}.log",
    )


def status_counts(using: str = "default") -> dict[str, int]:
    """Return the number of outbox rows in each status."""
    rows = OutboxEvent.objects.using(using).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def published_count(using: str = "default") -> int:
    """Return the number of published rows."""
    return OutboxEvent.objects.using(using).filter(status=Status.PUBLISHED).count()


def outbox_state(using: str = "default") -> str:
    """Describe the outbox for a failure message: counts by status and retries, common errors."""
    events = OutboxEvent.objects.using(using)
    retries = dict(events.values_list("retry_count").annotate(n=Count("pk")).order_by())
    errors = (
        events.exclude(last_error="")
        .values_list("last_error")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    held = events.exclude(**RELEASED).count()
    lines = [f"status {status_counts(using)}, retry_count {retries}, {held} claimed"]
    lines += [f"  {n} x {error[:300]}" for error, n in errors[:5]]
    return "\n".join(lines)


def poll(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    every: float = 0.25,
    using: str = "default",
) -> float:
    """Wait until ``condition()`` holds and return the seconds it took; raise after ``timeout``.

    Polls a few times a second, not more: the drills share two cores with the workers. The
    ``TimeoutError`` describes the outbox of database ``using``.
    """
    return polling.poll(
        condition, timeout, what, every=every, detail=lambda: f"outbox: {outbox_state(using)}"
    )


def publish(
    count: int, event_type: str = "drill.event", using: str = "default", **kwargs: Any
) -> list[str]:
    """Bulk-publish ``count`` small events and return their ids."""
    rows: list[OutboxEvent] = []
    for start in range(0, count, 5000):
        events = [
            CloudEvent(event_type, "https://drills.example.com", {"n": n, "pad": "x" * 200})
            for n in range(start, min(count, start + 5000))
        ]
        rows.extend(publisher.publish_events(events, using=using, **kwargs))
    return [str(row.id) for row in rows]


class SteadyPublisher:
    """Publish ``per_tick`` events every ``tick_s`` seconds in a thread, until stopped.

    Keeps each event's id and publication time, so a drill can ask what was published before a
    moment. Use as a context manager.
    """

    def __init__(self, per_tick: int = 10, tick_s: float = 0.1, using: str = "default") -> None:
        self.per_tick, self.tick_s, self.using = per_tick, tick_s, using
        self.published: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-publisher", daemon=True)
        self.error: BaseException | None = None

    def ids(self, before: float | None = None) -> list[str]:
        """Return the ids published so far, or those published before monotonic time ``before``."""
        with self._lock:
            return [i for t, i in self.published if before is None or t < before]

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.tick_s):
                ids = publish(self.per_tick, using=self.using)
                now = time.monotonic()
                with self._lock:
                    self.published.extend((now, i) for i in ids)
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            connection.close()

    def __enter__(self) -> SteadyPublisher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop publishing; raise what the thread raised, if anything."""
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise AssertionError(f"the steady publisher failed: {self.error!r}") from self.error
