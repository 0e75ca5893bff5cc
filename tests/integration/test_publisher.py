"""Publishing writes rows in the caller's transaction, and bad input writes nothing."""

from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

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


_CYCLE: list[object] = []
_CYCLE.append(_CYCLE)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": {"x": float("nan")}}, InvalidEvent, "NaN"),
        ({"data": {"n": 10**5000}}, InvalidEvent, r"not strict JSON \(Exceeds the limit \(4300"),
        ({"data": _CYCLE}, InvalidEvent, r"not strict JSON \(Circular reference"),
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


def nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


# Input that passed the checks before and then failed in the database, on PostgreSQL only (its
# DataError aborted the caller's transaction) or on SQLite only, or raised some other error.
# Each: the CloudEvent's arguments, publish_cloud_event's, and what the message says.
MINUS_5H = dt_timezone(timedelta(hours=-5))
LAST_HOUR_IN_MINUS_5H = datetime(9999, 12, 31, 23, tzinfo=MINUS_5H)  # year 10000 in UTC
FIRST_HOUR_IN_PLUS_1H = datetime(1, 1, 1, tzinfo=dt_timezone(timedelta(hours=1)))  # year 0
REFUSED_FIRST: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "time-year-10000-in-utc": ({"time": LAST_HOUR_IN_MINUS_5H}, {}, "time 9999-12-31T23:00"),
    "scheduled-at-year-10000-in-utc": ({}, {"scheduled_at": LAST_HOUR_IN_MINUS_5H}, "scheduled_at"),
    "scheduled-at-year-0-in-utc": ({}, {"scheduled_at": FIRST_HOUR_IN_PLUS_1H}, "years 1 to 9999"),
    "expirytime-feb-30": ({"extensions": {"expirytime": "2026-02-30T00:00:00Z"}}, {}, "expirytime"),
    "expirytime-year-0": ({"extensions": {"expirytime": "0000-01-01T00:00:00Z"}}, {}, "expirytime"),
    "expirytime-year-10000-in-utc": (
        {"extensions": {"expirytime": "9999-12-31T23:00:00-05:00"}},
        {},
        "expirytime 9999-12-31T23:00:00-05:00 is not in years 1 to 9999 in UTC",
    ),
    "expirytime-not-a-string": ({"extensions": {"expirytime": 5}}, {}, "expirytime '5'"),
    # Refused already; kept here to hold on both databases.
    "nul-in-type": ({"event_type": "a\x00b"}, {}, "type must not contain control characters"),
    "nul-in-source": ({"source": "shop\x00"}, {}, "source must not contain control characters"),
    "nul-in-subject": ({"subject": "\x00"}, {}, "subject must not contain control characters"),
    "nul-in-an-extension": ({"extensions": {"note": "\x00"}}, {}, "control characters"),
    "lone-surrogate-in-an-extension": ({"extensions": {"note": "\ud800"}}, {}, "lone surrogates"),
    "extension-over-32-bits": ({"extensions": {"n": 2**31}}, {}, "signed 32-bit integer"),
    # The limits of the outbox's columns.
    "partitionkey-256": ({"extensions": {"partitionkey": "k" * 256}}, {}, "partition_key is 256"),
    "max-retries-2**31": ({}, {"max_retries": 2**31}, "from 0 to 2147483647, got 2147483648"),
    # What the data may hold.
    "nul-in-data": ({"data": {"note": "a\x00b"}}, {}, r"data holds \\u0000"),
    "nul-in-a-key": ({"data": {"a\x00": 1}}, {}, r"data holds \\u0000"),
    "nul-in-text-data": ({"data": "\x00", "datacontenttype": "text/plain"}, {}, r"\\u0000"),
    "lone-surrogate": ({"data": ["\ud800"]}, {}, r"data holds \\ud800"),
    "lone-low-surrogate": ({"data": {"k": "x\udc00"}}, {}, r"data holds \\udc00"),
    "lone-surrogate-in-a-key": ({"data": {"\udbff": 1}}, {}, r"data holds \\udbff"),
    "nested-501-deep": ({"data": nested(501)}, {}, "nests over 500 levels"),
    "nested-5000-deep": ({"data": nested(5000)}, {}, "data nests"),
}


def refused_before_any_sql(publish: Callable[[], object], message: str) -> None:
    """Check that ``publish()`` raises InvalidEvent saying ``message``, sending no SQL, and that
    the caller's transaction goes on: a write after the error commits, and nothing else does."""
    with transaction.atomic():
        with (
            CaptureQueriesContext(connection) as queries,
            pytest.raises(InvalidEvent, match=message),
        ):
            publish()
        assert queries.captured_queries == []
        after = publisher.publish_event("order.created", "order-service", {"after": True})
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [after.pk]


@pytest.mark.parametrize("bulk", [False, True], ids=["one", "bulk"])
@pytest.mark.parametrize(
    ("event", "options", "message"), REFUSED_FIRST.values(), ids=REFUSED_FIRST.keys()
)
def test_what_a_database_would_refuse_is_refused_first_on_every_database(
    event: dict[str, Any], options: dict[str, Any], message: str, bulk: bool
) -> None:
    def publish() -> object:
        bad = CloudEvent(**{"event_type": "order.created", "source": "order-service", **event})
        if bulk:
            good = [CloudEvent("order.created", "order-service", {"n": n}) for n in range(2)]
            return publisher.publish_events([good[0], bad, good[1]], **options)
        return publisher.publish_cloud_event(bad, **options)

    refused_before_any_sql(publish, message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expires_at": LAST_HOUR_IN_MINUS_5H}, "expires_at 9999-12-31T23:00:00-05:00 is not in"),
        ({"partition_key": "k" * 256}, "partition_key is 256 characters long; the limit is 255"),
        ({"max_retries": 2**31}, "max_retries must be from 0 to 2147483647"),
        ({"max_retries": 2.5}, "max_retries must be an integer, got float 2.5"),
        ({"data": {"note": "\x00"}}, r"data holds \\u0000"),
    ],
    ids=["expires-at-year-10000-in-utc", "partition-key-256", "max-retries-2**31", "float", "nul"],
)
def test_publish_event_refuses_them_first_too(kwargs: dict[str, Any], message: str) -> None:
    refused_before_any_sql(
        lambda: publisher.publish_event("order.created", "order-service", **kwargs), message
    )


def test_the_limits_themselves_are_stored_on_every_database() -> None:
    row = publisher.publish_event(
        "order.created",
        "order-service",
        {"deep": nested(499), "text": "\\u0000 \\ud800 \U0001f600"},
        partition_key="k" * 255,
        max_retries=2**31 - 1,
        scheduled_at=datetime(9999, 12, 31, 23, tzinfo=dt_timezone.utc),
        extensions={"expirytime": "0001-01-01T00:00:00Z"},
    )
    stored = OutboxEvent.objects.get(pk=row.pk)
    assert stored.scheduled_at.year == 9999
    assert stored.expires_at == datetime.min.replace(tzinfo=dt_timezone.utc)
    assert (len(stored.partition_key or ""), stored.max_retries) == (255, 2**31 - 1)
    assert stored.data == {"deep": nested(499), "text": "\\u0000 \\ud800 \U0001f600"}
