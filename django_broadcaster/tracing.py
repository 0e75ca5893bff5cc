"""W3C trace context across the outbox hop, when OpenTelemetry is installed.

At publish time the active span's context is captured into the event as the CloudEvents
distributed-tracing extension (``traceparent``, ``tracestate``), so consumers continue the
publisher's trace. The worker's delivery span links to the trace of every event it carries.
Without ``opentelemetry-api`` installed, both are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .events import CloudEvent

TRACE_EXTENSIONS = ("traceparent", "tracestate")

try:
    from opentelemetry import propagate, trace
except ImportError:  # tracing is optional
    propagate = trace = None  # type: ignore[assignment]


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


def _span_context(event: CloudEvent) -> Any:
    carrier = {
        name: str(event.extensions[name]) for name in TRACE_EXTENSIONS if name in event.extensions
    }
    return trace.get_current_span(propagate.extract(carrier)).get_span_context()
