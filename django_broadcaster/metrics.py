"""Prometheus metrics of the worker, when ``prometheus-client`` is installed.

Labels have bounded cardinality: the outcome of an event, never its type or id.

- ``broadcaster_events_total{outcome}``: events a worker handled, by outcome (published,
  retried, deferred, failed, expired);
- ``broadcaster_batches_total``: claim cycles that found work;
- ``broadcaster_lag_seconds``: how long the oldest due event has been waiting, as of the last
  progress report.

Without the library every function here does nothing.
"""

from __future__ import annotations

from typing import Any

try:
    import prometheus_client
except ImportError:  # metrics are optional
    prometheus_client = None  # type: ignore[assignment]

OUTCOMES = ("published", "retried", "deferred", "failed", "expired")

if prometheus_client is not None:
    EVENTS: Any = prometheus_client.Counter(
        "broadcaster_events", "Outbox events handled by the worker, by outcome.", ["outcome"]
    )
    BATCHES: Any = prometheus_client.Counter(
        "broadcaster_batches", "Claim cycles of the worker that found events."
    )
    LAG: Any = prometheus_client.Gauge(
        "broadcaster_lag_seconds", "How long the oldest due outbox event has been waiting."
    )


def record_batch(summary: Any) -> None:
    """Count one batch's outcomes (a ``BatchSummary``)."""
    if prometheus_client is None:
        return
    BATCHES.inc()
    for outcome in OUTCOMES:
        count = getattr(summary, outcome)
        if count:
            EVENTS.labels(outcome=outcome).inc(count)


def set_lag(seconds: float) -> None:
    """Publish the current lag."""
    if prometheus_client is not None:
        LAG.set(seconds)


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``address``:``port`` from a background thread.

    Raises ``ImproperlyConfigured`` when ``prometheus-client`` is not installed.
    """
    if prometheus_client is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "--metrics-port needs prometheus-client: pip install 'django-broadcaster[metrics]'"
        )
    prometheus_client.start_http_server(port, addr=address)
