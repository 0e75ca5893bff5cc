"""Trace context is captured at publish time, and the delivery span links back to it."""

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from django_broadcaster.backends import locmem
from django_broadcaster.conf import get_settings
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)  # once per process; other tests do not look at spans


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    _exporter.clear()
    yield _provider.get_tracer("tests")
    _exporter.clear()


def test_publish_captures_the_active_trace_and_delivery_links_to_it(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("POST /orders") as request_span:
        row = publisher.publish_event("order.created", "shop", {"n": 1})
    untraced = publisher.publish_event("order.created", "shop", {"n": 2})

    trace_id = f"{request_span.get_span_context().trace_id:032x}"
    assert row.extensions["traceparent"].split("-")[1] == trace_id
    assert "traceparent" not in untraced.extensions

    Worker(config=get_settings(), registry=EventRegistry(), burst=True).run()

    delivered = {event.id: event for event in locmem.outbox}
    assert delivered[str(row.id)].extensions["traceparent"] == row.extensions["traceparent"]
    [span] = [s for s in _exporter.get_finished_spans() if s.name == "outbox deliver"]
    assert [f"{link.context.trace_id:032x}" for link in span.links] == [trace_id]


def test_an_explicit_traceparent_wins(tracer: trace.Tracer) -> None:
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracer.start_as_current_span("request"):
        row = publisher.publish_event("t", "s", extensions={"traceparent": mine})
    assert row.extensions["traceparent"] == mine
