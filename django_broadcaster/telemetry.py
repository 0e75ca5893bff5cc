"""Traces and metrics, when OpenTelemetry and prometheus-client are installed.

Tracing: at publish time the active span's W3C trace context is captured into the event as the
CloudEvents distributed-tracing extension (``traceparent``, ``tracestate``), so consumers continue
the publisher's trace; the worker's delivery span links to the trace of every event it carries.

Metrics (labels of bounded cardinality: an outcome or a configured destination, never an
event's type or id):

- ``broadcaster_events_total{outcome}``: events a worker handled, by outcome (published,
  retried, deferred, failed, expired);
- ``broadcaster_batches_total``: claim cycles that found work;
- ``broadcaster_lag_seconds``: how long the oldest unfinished event has waited, as of the last
  progress report (see :mod:`django_broadcaster.outbox.health`);
- ``broadcaster_destination_lag_seconds{destination}``: the same for the events bound for each
  configured backend and handler (0 when none waits).

The outcome names themselves are :class:`Tally`'s fields, so that the log lines, the metrics
and the worker's totals count the same things. Without the libraries every function here does
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from .events import CloudEvent
from .exceptions import missing_library

TRACE_EXTENSIONS = ("traceparent", "tracestate")

try:
    from opentelemetry import propagate, trace
except ImportError:  # tracing is optional
    propagate = trace = None  # type: ignore[assignment]

try:
    import prometheus_client
except ImportError as exc:  # metrics are optional
    prometheus_client = None  # type: ignore[assignment]
    _NO_METRICS: ImportError | None = exc
else:
    _NO_METRICS = None
    EVENTS: Any = prometheus_client.Counter(
        "broadcaster_events", "Outbox events handled by the worker, by outcome.", ["outcome"]
    )
    BATCHES: Any = prometheus_client.Counter(
        "broadcaster_batches", "Claim cycles of the worker that found events."
    )
    LAG: Any = prometheus_client.Gauge(
        "broadcaster_lag_seconds", "How long the oldest unfinished outbox event has waited."
    )
    DESTINATION_LAG: Any = prometheus_client.Gauge(
        "broadcaster_destination_lag_seconds",
        "How long the oldest outbox event bound for the destination has waited for it.",
        ["destination"],
    )


def current_trace_extensions() -> dict[str, str]:
    """Return the active span's ``traceparent`` (and ``tracestate``), or ``{}`` if none."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {name: carrier[name] for name in TRACE_EXTENSIONS if carrier.get(name)}


@contextmanager
def delivery_span(events: Sequence[CloudEvent]) -> Iterator[None]:
    """Run the block in a span linked to the publishers' traces of ``events``."""
    if trace is None:
        yield
        return
    traced = [event for event in events if "traceparent" in event.extensions]
    links = [trace.Link(context) for context in map(_span_context, traced) if context.is_valid]
    tracer = trace.get_tracer("django_broadcaster")
    with tracer.start_as_current_span(
        "outbox deliver", links=links, attributes={"messaging.batch.message_count": len(events)}
    ):
        yield


@dataclass
class Tally:
    """How many events ended each way: in one batch, or over a worker's run.

    Its fields are the outcome names everywhere (log lines, metrics, the worker's totals).
    """

    published: int = 0
    retried: int = 0
    deferred: int = 0
    failed: int = 0
    expired: int = 0
    dead_lettered: int = 0

    @property
    def handled(self) -> int:
        """Return how many events ended in any way."""
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, int]:
        """Return the counts by outcome name."""
        return {f.name: getattr(self, f.name) for f in fields(Tally)}

    def __str__(self) -> str:
        counts = ", ".join(f"{count} {name}" for name, count in self.as_dict().items() if count)
        return counts or "no events"

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these."""
        for name, count in other.as_dict().items():
            setattr(self, name, getattr(self, name) + count)


def count_batch(outcomes: Mapping[str, int]) -> None:
    """Count one batch, and how many of its events ended each way (by outcome name)."""
    if prometheus_client is None:
        return
    BATCHES.inc()
    for outcome, count in outcomes.items():
        if count:
            EVENTS.labels(outcome=outcome).inc(count)


def set_lag(seconds: float, by_destination: Mapping[str, float] | None = None) -> None:
    """Publish the current lag, and each destination's (by name)."""
    if prometheus_client is None:
        return
    LAG.set(seconds)
    for destination, lag in (by_destination or {}).items():
        DESTINATION_LAG.labels(destination=destination).set(lag)


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``address``:``port`` from a background thread.

    Raises ``BroadcasterImproperlyConfigured`` when ``prometheus-client`` is not installed.
    """
    if prometheus_client is None:
        raise missing_library("--metrics-port", "prometheus-client", "metrics") from _NO_METRICS
    prometheus_client.start_http_server(port, addr=address)


def _span_context(event: CloudEvent) -> Any:
    carrier = {
        name: str(event.extensions[name]) for name in TRACE_EXTENSIONS if name in event.extensions
    }
    return trace.get_current_span(propagate.extract(carrier)).get_span_context()
