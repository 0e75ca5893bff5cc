"""Publishing writes rows in the caller's transaction, and bad input writes nothing."""

from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import (
    BroadcasterImproperlyConfigured,
    InvalidEvent,
    UnknownBackend,
)
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.signals import event_created

pytestmark = pytest.mark.django_db(transaction=True)


def test_publish_event_writes_a_pending_row() -> None:
    row = publisher.publish_event(
        "order.created", "order-service", {"order": 1}, subject="o-1", max_retries=2
    )
    stored = OutboxEvent.objects.get(pk=row.pk)
    assert (stored.status, stored.data, stored.subject, stored.max_retries) == (
        Status.PENDING,
        {"order": 1},
        "o-1",
        2,
    )
    assert stored.last_error == ""
    assert stored.as_cloud_event().id == str(row.id)
    assert stored.time.tzinfo is not None


def test_a_rolled_back_transaction_leaves_no_event() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        publisher.publish_event("order.created", "order-service", {"order": 1})
        raise RuntimeError("the view failed after publishing")
    assert not OutboxEvent.objects.exists()


def test_a_committed_transaction_keeps_the_event() -> None:
    with transaction.atomic():
        publisher.publish_event("order.created", "order-service", {"order": 1})
    assert OutboxEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": {"x": float("nan")}}, InvalidEvent, "NaN"),
        ({"data": {"when": timezone.now()}}, InvalidEvent, "JSON-serializable"),
        ({"data": {"blob": "x" * 70_000}}, InvalidEvent, "over the limit"),
        ({"event_type": ""}, InvalidEvent, "type must not be empty"),
        ({"source": "not a uri"}, InvalidEvent, "URI-reference"),
        ({"extensions": {"Bad": 1}}, InvalidEvent, "extension name"),
        ({"scheduled_at": datetime(2030, 1, 1)}, InvalidEvent, "timezone-aware"),
        ({"max_retries": -1}, InvalidEvent, "max_retries"),
        ({"backends": ["nope"]}, UnknownBackend, "Unknown backend alias 'nope'"),
        ({"backends": "default"}, InvalidEvent, "list of aliases"),
        ({"subject": "s" * 256}, InvalidEvent, "limit is 255"),
    ],
)
def test_bad_input_raises_at_the_call_site_and_writes_nothing(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    arguments: dict[str, object] = {"event_type": "order.created", "source": "order-service"}
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        publisher.publish_event(**arguments)  # type: ignore[arg-type]
    assert not OutboxEvent.objects.exists()


def test_publishing_with_naive_times_raises_and_writes_nothing() -> None:
    with (
        override_settings(USE_TZ=False),
        pytest.raises(BroadcasterImproperlyConfigured, match="USE_TZ"),
    ):
        publisher.publish_event("order.created", "order-service", {"id": 1})
    assert not OutboxEvent.objects.exists()


@override_settings(BROADCASTER={"MAX_DATA_SIZE": 100})
def test_the_size_limit_is_configurable() -> None:
    with pytest.raises(InvalidEvent, match="limit of 100 bytes"):
        publisher.publish_event("t", "s", {"blob": "x" * 200})


def test_scheduled_events_wait_until_their_time() -> None:
    later = timezone.now() + timedelta(hours=1)
    row = publisher.publish_event("t", "s", scheduled_at=later)
    assert OutboxEvent.objects.get(pk=row.pk).scheduled_at == later
    assert not OutboxEvent.objects.due(timezone.now()).exists()


def test_publish_cloud_event_keeps_a_uuid_id_and_rejects_others() -> None:
    event = CloudEvent("t", "s", id="0195b7a4-8f1c-7c3e-9d2a-1b2c3d4e5f60")
    row = publisher.publish_cloud_event(event)
    assert str(row.id) == event.id
    with pytest.raises(InvalidEvent, match="must be a UUID"):
        publisher.publish_cloud_event(CloudEvent("t", "s", id="order-1"))


def test_partition_key_becomes_the_partitionkey_extension() -> None:
    row = publisher.publish_event("t", "s", partition_key="order-7", extensions={"tenant": "a"})
    assert row.extensions == {"tenant": "a", "partitionkey": "order-7"}


def test_bulk_publish_is_one_insert_and_all_or_nothing() -> None:
    # 40 rows: SQLite caps one statement at 999 parameters, about 49 outbox rows.
    events = [CloudEvent("order.created", "order-service", {"n": n}) for n in range(40)]
    with CaptureQueriesContext(connection) as queries:
        rows = publisher.publish_events(events)
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("INSERT", "COPY"))]
    assert len(writes) == 1
    assert [row.data for row in rows] == [{"n": n} for n in range(40)]
    assert OutboxEvent.objects.count() == 40
    with pytest.raises(InvalidEvent):
        publisher.publish_events([CloudEvent("t", "s", {"ok": 1}), CloudEvent("t", "s", {1, 2})])
    assert OutboxEvent.objects.count() == 40


def test_event_created_is_sent_for_each_row() -> None:
    received: list[OutboxEvent] = []

    def receiver(sender: type, event: OutboxEvent, **kwargs: object) -> None:
        received.append(event)

    event_created.connect(receiver)
    try:
        row = publisher.publish_event("t", "s")
    finally:
        event_created.disconnect(receiver)
    assert received == [row]


def test_data_that_is_not_text_is_refused_for_a_content_type_that_is_not_json() -> None:
    with pytest.raises(InvalidEvent, match="does not declare JSON, so data must be text"):
        publisher.publish_event("order.note", "shop", {"a": 1}, datacontenttype="text/plain")
    row = publisher.publish_event("order.note", "shop", '{"a": 1}', datacontenttype="text/plain")
    assert row.as_cloud_event().data == '{"a": 1}'
    assert not OutboxEvent.objects.exclude(pk=row.pk).exists()
