"""RedisStreamConsumer against a real Redis: streams written by RedisStreamBackend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.backends import RedisStreamBackend
from django_broadcaster.consumers.decoding import decode_structured
from django_broadcaster.consumers.inbox import InboxEntry, InboxStatus
from django_broadcaster.consumers.processing import Message, RetryPolicy
from django_broadcaster.consumers.redis import RedisStreamConsumer
from django_broadcaster.events import CloudEvent
from django_broadcaster.formats import to_structured_json
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry, consumer_registry, event_registry
from django_broadcaster.worker import Worker
from tests.factories import published_event

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

TYPE = "com.example.order.created"
GROUP = "billing"
QUICK = RetryPolicy(max_attempts=2, base_delay=timedelta(0), max_delay=timedelta(0))


@pytest.fixture
def send(redis_url: str, unique_name: str, redis_client: Any) -> Iterator[Any]:
    """Return a function that appends events to the stream ``unique_name`` with the backend."""
    with RedisStreamBackend("redis", url=redis_url, stream_name=unique_name) as backend:
        assert isinstance(backend, RedisStreamBackend)

        def send(events: list[CloudEvent]) -> None:
            assert backend.send_batch(events) == {}

        yield send


def side_effect(event: CloudEvent) -> None:
    if event.data == "poison":
        raise RuntimeError("cannot handle it")
    publisher.publish_event("handled", "tests", {"event": event.id})


def handled() -> list[str]:
    rows = OutboxEvent.objects.filter(event_type="handled").values_list("data", flat=True)
    return sorted(data["event"] for data in rows)


def consumer(client: Any, stream: str, name: str = "c1", **options: Any) -> RedisStreamConsumer:
    registry = EventRegistry()
    registry.register(TYPE)(side_effect)
    options = {"burst": True, "block": timedelta(seconds=0.2), "policy": QUICK, **options}
    return RedisStreamConsumer(client, stream, GROUP, name, registry=registry, **options)


def pending(client: Any, stream: str) -> int:
    return int(client.xpending(stream, GROUP)["pending"])


def test_each_event_is_handled_once_though_sent_twice(
    send: Any, redis_client: Any, unique_name: str
) -> None:
    events = [published_event() for _ in range(30)]
    send(events)
    send(events[:20])

    stats = consumer(redis_client, unique_name, batch_size=7).run()

    assert (stats.processed, stats.duplicates) == (30, 20)
    assert handled() == sorted(str(e.id) for e in events)
    assert InboxEntry.objects.count() == 30
    assert pending(redis_client, unique_name) == 0


class CrashBeforeAck(RedisStreamConsumer):
    """Commit every event, then die before XACK, as a process killed at that moment does."""

    def acknowledge(self, messages: list[Message]) -> None:
        self.stop()


def test_entries_committed_but_not_acknowledged_are_claimed_and_skipped(
    send: Any, redis_client: Any, unique_name: str
) -> None:
    events = [published_event() for _ in range(10)]
    send(events)
    registry = EventRegistry()
    registry.register(TYPE)(side_effect)
    crashed = CrashBeforeAck(redis_client, unique_name, GROUP, "dead", registry=registry)
    assert crashed.run().processed == 10
    assert pending(redis_client, unique_name) == 10

    stats = consumer(redis_client, unique_name, "heir", claim_idle=timedelta(0)).run()

    assert (stats.processed, stats.duplicates) == (0, 10)
    assert handled() == sorted(str(e.id) for e in events)
    assert pending(redis_client, unique_name) == 0


def test_a_restart_under_the_same_name_resumes_its_pending_entries_first(
    send: Any, redis_client: Any, unique_name: str
) -> None:
    events = [published_event() for _ in range(6)]
    send(events[:3])
    redis_client.xgroup_create(unique_name, GROUP, id="0")
    redis_client.xreadgroup(GROUP, "c1", {unique_name: ">"})  # delivered, never handled
    send(events[3:])
    order: list[str] = []
    instance = consumer(redis_client, unique_name, "c1")  # claim_idle 60 s: no claiming
    instance.processor.registry.register(TYPE)(lambda event: order.append(str(event.id)))

    assert instance.run().processed == 6
    assert order == [e.id for e in events]
    assert pending(redis_client, unique_name) == 0


def test_a_poison_event_is_a_dead_letter_and_acknowledged(
    send: Any, redis_client: Any, unique_name: str
) -> None:
    bad, good = published_event(data="poison"), published_event()
    send([bad, good])

    stats = consumer(redis_client, unique_name).run()

    assert (stats.dead_lettered, stats.processed) == (1, 1)
    letter = InboxEntry.objects.get(status=InboxStatus.FAILED)
    assert letter.error == "RuntimeError: cannot handle it"
    assert decode_structured(letter.payload) == bad
    assert pending(redis_client, unique_name) == 0
    assert consumer(redis_client, unique_name).run().processed == 0  # never redelivered


def test_a_failing_event_with_a_lone_surrogate_in_its_data_is_a_dead_letter(
    send: Any, redis_client: Any, unique_name: str
) -> None:
    document = json.loads(to_structured_json(published_event()))
    document["data"] = "poison \ud800"  # valid JSON: written as the escape \ud800
    redis_client.xadd(unique_name, {"cloud_event": json.dumps(document)})
    good = published_event()
    send([good])

    def reject(event: CloudEvent) -> None:
        if "\ud800" in str(event.data):
            raise ValueError(event.data)

    instance = consumer(redis_client, unique_name)
    instance.processor.registry.register(TYPE)(reject)
    stats = instance.run()

    assert (stats.dead_lettered, stats.processed) == (1, 1)
    letter = InboxEntry.objects.get(status=InboxStatus.FAILED)
    assert decode_structured(letter.payload).data == "poison \ud800"
    assert letter.error == "ValueError: poison \\ud800"
    assert handled() == [good.id]
    assert pending(redis_client, unique_name) == 0


def test_an_undecodable_entry_is_a_dead_letter_keyed_by_its_position(
    send: Any, redis_client: Any, unique_name: str
) -> None:
    entry_id = redis_client.xadd(unique_name, {"cloud_event": "{not json"}).decode()
    send([published_event()])

    stats = consumer(redis_client, unique_name).run()

    assert (stats.dead_lettered, stats.processed) == (1, 1)
    letter = InboxEntry.objects.get(status=InboxStatus.FAILED)
    assert (letter.source, letter.event_id) == (f"redis:{unique_name}", entry_id)
    assert "not CloudEvents JSON" in letter.error
    assert '"cloud_event": "{not json"' in letter.payload
    assert pending(redis_client, unique_name) == 0


def test_an_entry_trimmed_before_it_was_handled_is_recorded_as_lost(
    send: Any, redis_client: Any, unique_name: str
) -> None:
    send([published_event()])
    redis_client.xgroup_create(unique_name, GROUP, id="0")
    redis_client.xreadgroup(GROUP, "c1", {unique_name: ">"})
    redis_client.xtrim(unique_name, maxlen=0)

    assert consumer(redis_client, unique_name, "c1").run().dead_lettered == 1
    assert "trimmed" in InboxEntry.objects.get().error
    assert pending(redis_client, unique_name) == 0


def test_an_existing_group_is_joined_not_recreated(redis_client: Any, unique_name: str) -> None:
    first = consumer(redis_client, unique_name)
    first.open()
    first.open()
    assert [group["name"] for group in redis_client.xinfo_groups(unique_name)] == [GROUP.encode()]


def test_a_project_consuming_its_own_stream_runs_each_handler_once(
    redis_url: str, redis_client: Any, unique_name: str, global_handlers: Any
) -> None:
    calls: list[tuple[str, str]] = []
    global_handlers(event_registry, TYPE, lambda event: calls.append(("local", event.id)))
    global_handlers(consumer_registry, TYPE, lambda event: calls.append(("consumer", event.id)))
    backend = {
        "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
        "OPTIONS": {"url": redis_url, "stream_name": unique_name},
    }
    with override_settings(BROADCASTER={"BACKENDS": {"redis": backend}}):
        row = publisher.publish_event(TYPE, "https://shop.example.com/orders", {"order": 1})
        Worker(burst=True).run()  # the local handler, and the stream
    block = timedelta(seconds=0.2)
    RedisStreamConsumer(redis_client, unique_name, GROUP, "c1", burst=True, block=block).run()

    assert sorted(calls) == [("consumer", str(row.id)), ("local", str(row.id))]
