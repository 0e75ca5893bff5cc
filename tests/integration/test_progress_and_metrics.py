"""The worker's progress line and its Prometheus metrics."""

import logging
import re
import socket
import urllib.request
from dataclasses import replace
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from django_broadcaster import telemetry as metrics
from django_broadcaster.conf import get_settings
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.telemetry import Tally
from django_broadcaster.worker import Worker
from django_broadcaster.worker.progress import ProgressReport

pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def test_progress_line_reports_rate_and_lag(caplog: pytest.LogCaptureFixture) -> None:
    for n in range(5):
        publisher.publish_event("t", "s", {"n": n})
    OutboxEvent.objects.update(scheduled_at=timezone.now() - timedelta(seconds=90))
    config = replace(get_settings(), batch_size=2)
    worker = Worker(
        config=config, registry=EventRegistry(), max_iterations=1, progress_interval=1e-9
    )
    with caplog.at_level(logging.INFO, logger="django_broadcaster.worker"):
        worker.run()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Published")]
    assert line.startswith("Published 2 events in ")
    lag, default = map(float, re.findall(r"lag ([\d.]+) s \(default ([\d.]+) s\)\.$", line)[0])
    assert 89 <= lag < 300 and default == lag  # three events still wait, since 90 s ago
    assert sample("broadcaster_lag_seconds") == pytest.approx(lag, abs=0.05)
    assert sample("broadcaster_destination_lag_seconds", destination="default") == pytest.approx(
        lag, abs=0.05
    )


@override_settings(
    BROADCASTER={
        "BACKENDS": {"kafka": {"BACKEND": "tests.doubles.UnavailableBackend"}},
        "BREAKER_BASE_DELAY": timedelta(minutes=1),
    }
)
def test_an_event_deferred_by_an_outage_is_lag(caplog: pytest.LogCaptureFixture) -> None:
    row = publisher.publish_event("t", "s")
    OutboxEvent.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=35))
    worker = Worker(
        config=get_settings(), registry=EventRegistry(), max_iterations=1, progress_interval=1e-9
    )
    with caplog.at_level(logging.INFO, logger="django_broadcaster.worker"):
        stats = worker.run()
    assert stats.deferred == 1  # Kafka is down
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Published")]
    assert re.search(r"; lag 3\d\.\d s \(kafka 3\d\.\d s\)\.$", line), line
    assert sample("broadcaster_lag_seconds") >= 35
    assert sample("broadcaster_destination_lag_seconds", destination="kafka") >= 35


def test_batches_are_counted_by_outcome() -> None:
    before = sample("broadcaster_events_total", outcome="published")
    batches = sample("broadcaster_batches_total")
    publisher.publish_event("t", "s")
    publisher.publish_event("t", "s")
    Worker(config=get_settings(), registry=EventRegistry(), burst=True).run()
    assert sample("broadcaster_events_total", outcome="published") == before + 2
    assert sample("broadcaster_batches_total") == batches + 1


def test_metrics_are_served_over_http() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics.set_lag(12.5)
    metrics.serve_metrics(port, "127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    assert "broadcaster_lag_seconds 12.5" in body


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Published")]


def test_an_idle_worker_logs_no_progress_line(caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker(registry=EventRegistry(), max_iterations=3, progress_interval=1e-9)
    worker.config = replace(worker.config, poll_interval=timedelta(0))
    with caplog.at_level(logging.INFO, logger="django_broadcaster.worker"):
        worker.run()
    assert progress_lines(caplog) == []


def test_a_line_when_lag_appears_and_when_it_clears(caplog: pytest.LogCaptureFixture) -> None:
    report = ProgressReport(1e-9, EventRegistry())
    row = publisher.publish_event("t", "s")  # waiting, for another worker say
    OutboxEvent.objects.update(scheduled_at=timezone.now() - timedelta(seconds=30))
    with caplog.at_level(logging.INFO, logger="django_broadcaster.worker"):
        report.maybe_log(Tally())  # the lag appeared
        report.maybe_log(Tally())  # no change
        OutboxEvent.objects.filter(pk=row.pk).update(status=Status.PUBLISHED)
        report.maybe_log(Tally())  # the lag cleared
        report.maybe_log(Tally())  # no change
    [appeared, cleared] = progress_lines(caplog)
    assert re.search(r"lag 3\d\.\d s \(default 3\d\.\d s\)\.$", appeared), appeared
    assert cleared.endswith("; lag 0.0 s.")


@pytest.mark.parametrize(
    ("interval", "lines"), [(timedelta(microseconds=1), 1), (None, 0)], ids=["set", "None"]
)
@pytest.mark.usefixtures("garbage_collector_restored")  # the command tunes the collector
def test_the_command_reports_every_progress_interval(
    caplog: pytest.LogCaptureFixture, interval: timedelta | None, lines: int
) -> None:
    publisher.publish_event("t", "s")
    settings = {**django_settings.BROADCASTER, "PROGRESS_INTERVAL": interval}
    with (
        override_settings(BROADCASTER=settings),
        caplog.at_level(logging.INFO, logger="django_broadcaster.worker"),
    ):
        call_command("outbox_worker", "--burst", stdout=StringIO())
    assert len(progress_lines(caplog)) == lines


def test_the_logger_operations_md_silences_is_the_progress_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    [block] = re.findall(r"```python\n(LOGGING = .*?)```", text, re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    [name] = namespace["LOGGING"]["loggers"]
    publisher.publish_event("t", "s")
    with caplog.at_level(logging.INFO, logger="django_broadcaster.worker"):
        Worker(registry=EventRegistry(), burst=True, progress_interval=1e-9).run()
    assert {r.name for r in caplog.records if r.getMessage().startswith("Published")} == {name}
