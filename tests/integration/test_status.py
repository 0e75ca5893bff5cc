"""The outbox status: counts, lag, failure reasons and each destination's backlog."""

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox.health import (
    DestinationStatus,
    FailureReason,
    lags,
    outbox_status,
)
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from tests.factories import delivered_to, named_backends

pytestmark = pytest.mark.django_db
NOW = timezone.now()
BACKENDS = {
    alias: {"BACKEND": "django_broadcaster.backends.LocMemBackend"} for alias in ("kafka", "redis")
}


def on_order(event: CloudEvent) -> None:
    """A handler of order events."""


def event(event_type: str = "order", **fields: Any) -> None:
    row = publisher.publish_event(event_type, "shop")
    OutboxEvent.objects.filter(pk=row.pk).update(**fields)


def test_an_empty_outbox() -> None:
    status = outbox_status(now=NOW, registry=EventRegistry())
    assert {"pending", "published", "failed"} <= status.counts.keys()
    assert set(status.counts.values()) == {0}
    assert (status.due, status.in_flight, status.lag, status.top_failures) == (0, 0, None, [])
    assert status.waiting_reasons == []
    assert status.destinations == [DestinationStatus("default", "backend", 0, 0)]


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_a_busy_outbox(django_assert_num_queries: Any) -> None:
    event(scheduled_at=NOW - timedelta(seconds=30))  # due for 30 s
    event(scheduled_at=NOW - timedelta(seconds=5), delivery=delivered_to("kafka"))
    held = {"leased_until": NOW + timedelta(seconds=60), "lease_token": uuid.uuid4()}
    event(scheduled_at=NOW - timedelta(seconds=40), **held)  # in flight: not due, but the lag
    later = {"scheduled_at": NOW + timedelta(hours=1), **named_backends("redis")}
    event("audit", created_at=NOW - timedelta(seconds=50), last_error="redis: down", **later)
    event(status=Status.PUBLISHED, delivery=delivered_to("kafka", "redis"))
    for _ in range(2):
        event(
            status=Status.FAILED,
            last_error="kafka: EventRejected: too big",
            delivery=delivered_to("redis"),
        )
    event(status=Status.FAILED, last_error="handler:x: ValueError: no", **named_backends("kafka"))
    registry = EventRegistry()
    registry.register("order")(on_order)
    with django_assert_num_queries(6):
        status = outbox_status(now=NOW, top=5, registry=registry)
    assert (status.counts["pending"], status.counts["published"], status.counts["failed"]) == (
        4,
        1,
        3,
    )
    assert (status.due, status.in_flight, status.lag) == (2, 1, timedelta(seconds=50))
    assert status.oldest_due_at == NOW - timedelta(seconds=30)
    assert status.top_failures == [
        FailureReason("kafka: EventRejected: too big", 2),
        FailureReason("handler:x: ValueError: no", 1),
    ]
    assert status.waiting_reasons == [FailureReason("redis: down", 1)]  # the others: not tried
    assert status.destinations == [
        DestinationStatus("kafka", "backend", pending=2, failed=3, lag=timedelta(seconds=40)),
        DestinationStatus("redis", "backend", pending=4, failed=0, lag=timedelta(seconds=50)),
        DestinationStatus(
            f"handler:{__name__}.on_order", "handler", 3, 3, lag=timedelta(seconds=40)
        ),
    ]


def test_events_published_for_later_are_no_lag_until_their_time() -> None:
    event(scheduled_at=NOW + timedelta(hours=1))
    assert outbox_status(now=NOW, registry=EventRegistry()).lag is None
    event(scheduled_at=NOW - timedelta(seconds=20), created_at=NOW - timedelta(hours=1))
    assert outbox_status(now=NOW, registry=EventRegistry()).lag == timedelta(seconds=20)


def test_a_deferred_event_is_lag_from_its_creation_for_its_destinations() -> None:
    # Kafka down for 35 s: the event waits for its breaker, not due, and is lag all the same.
    deferred = {"scheduled_at": NOW + timedelta(seconds=20), "last_error": "kafka: unavailable"}
    event(created_at=NOW - timedelta(seconds=35), **deferred, **named_backends("kafka"))
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS}):
        status = outbox_status(now=NOW, registry=EventRegistry())
        assert lags(now=NOW, registry=EventRegistry()) == (
            timedelta(seconds=35),
            {"kafka": timedelta(seconds=35), "redis": None},
        )
    assert (status.due, status.lag) == (0, timedelta(seconds=35))
    assert [(d.name, d.lag) for d in status.destinations] == [
        ("kafka", timedelta(seconds=35)),
        ("redis", None),
    ]


def test_top_limits_the_failure_reasons() -> None:
    for n in range(3):
        event(status=Status.FAILED, last_error=f"default: error {n}")
    assert len(outbox_status(top=2).top_failures) == 2


def test_as_dict_is_json_ready() -> None:
    event(scheduled_at=NOW - timedelta(seconds=10))
    values = outbox_status(now=NOW, registry=EventRegistry()).as_dict()
    assert json.loads(json.dumps(values))["lag_seconds"] == 10.0
    assert values["now"] == NOW.isoformat()
    assert values["waiting_since"] == (NOW - timedelta(seconds=10)).isoformat()
    assert values["destinations"] == [
        {"name": "default", "kind": "backend", "pending": 1, "failed": 0, "lag_seconds": 10.0}
    ]
