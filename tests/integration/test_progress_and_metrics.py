"""The worker's progress line and its Prometheus metrics."""

import logging
import socket
import urllib.request
from dataclasses import replace
from datetime import timedelta

import prometheus_client
import pytest
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
    lag = float(line.rsplit("lag ", 1)[1].removesuffix(" s."))
    assert 89 <= lag < 300
    assert sample("broadcaster_lag_seconds") == pytest.approx(lag, abs=0.05)


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
