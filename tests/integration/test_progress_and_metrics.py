"""The worker's progress line and its Prometheus metrics."""

import logging
import re
import socket
import urllib.request
from dataclasses import replace
from datetime import timedelta

import prometheus_client
import pytest
from django.test import override_settings
from django.utils import timezone

from django_broadcaster import telemetry as metrics
from django_broadcaster.conf import get_settings
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker import Worker

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
