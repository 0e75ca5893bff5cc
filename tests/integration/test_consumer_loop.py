"""The consumer loop and its processing rules, on an in-memory transport (no broker)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection

from django_broadcaster.backends.kafka import binary_message
from django_broadcaster.consumers.base import BaseConsumer
from django_broadcaster.consumers.decoding import decode_structured
from django_broadcaster.consumers.inbox import InboxEntry, InboxStatus
from django_broadcaster.consumers.processing import Message, RetryPolicy
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BroadcasterImproperlyConfigured
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry, consumer_registry, event_registry
from tests.factories import published_event

pytestmark = pytest.mark.django_db(transaction=True)

TYPE = "com.example.order.created"
QUICK = RetryPolicy(max_attempts=3, base_delay=timedelta(0), max_delay=timedelta(0))


class ListConsumer(BaseConsumer):
    """Serve ``messages`` in batches; check that each acknowledged event is committed."""

    def __init__(self, messages: list[Message], batch_size: int = 10, **options: Any) -> None:
        super().__init__(burst=True, **options)
        self.pending, self.batch_size, self.acked = list(messages), batch_size, []

    def open(self) -> None:
        pass

    def fetch(self) -> list[Message]:
        return self.pending[: self.batch_size]

    def acknowledge(self, messages: list[Message]) -> None:
        assert not connection.in_atomic_block
        for message in messages:
            if message.event is not None and message.event.event_type == TYPE:
                of_event = InboxEntry.objects.of(message.event)
                at_position = InboxEntry.objects.filter(event_id=message.position)
                assert of_event.exists() or at_position.exists()
        self.acked += [message.position for message in messages]
        del self.pending[: len(messages)]


def message(event: CloudEvent | None, position: str = "", **fields: Any) -> Message:
    return Message("test:list", position or str(event and event.id), position, event, **fields)


def side_effect(event: CloudEvent) -> None:
    publisher.publish_event("handled", "tests", {"event": event.id})


def handled() -> list[str]:
    rows = OutboxEvent.objects.filter(event_type="handled").values_list("data", flat=True)
    return sorted(data["event"] for data in rows)


def consumer_of(messages: list[Message], *handlers: Any, **options: Any) -> ListConsumer:
    registry = EventRegistry()
    for handler in handlers or (side_effect,):
        registry.register(TYPE)(handler)
    return ListConsumer(messages, registry=registry, policy=options.pop("policy", QUICK), **options)


def test_each_event_is_handled_once_and_every_message_acknowledged() -> None:
    events = [published_event() for _ in range(5)]
    consumer = consumer_of([message(e) for e in events + events[:3]], batch_size=3)
    stats = consumer.run()
    assert (stats.processed, stats.duplicates) == (5, 3)
    assert handled() == sorted(str(e.id) for e in events)
    assert len(consumer.acked) == 8


def test_a_failing_handler_is_retried_in_place() -> None:
    attempts: list[str] = []

    def flaky(event: CloudEvent) -> None:
        attempts.append(str(event.id))
        side_effect(event)
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    event = published_event()
    stats = consumer_of([message(event)], flaky).run()
    assert stats.processed == 1
    assert handled() == [event.id]  # the failed attempts rolled back their side effect


def test_a_poison_event_becomes_a_dead_letter_and_the_next_one_is_handled() -> None:
    def poison(event: CloudEvent) -> None:
        if event.data == "poison":
            raise ValueError("cannot handle this")
        side_effect(event)

    bad, good = published_event(data="poison"), published_event()
    consumer = consumer_of([message(bad), message(good)], poison)
    stats = consumer.run()
    assert (stats.dead_lettered, stats.processed) == (1, 1)
    assert consumer.acked == [bad.id, good.id]
    letter = InboxEntry.objects.get(status=InboxStatus.FAILED)
    assert letter.error == "ValueError: cannot handle this"
    assert decode_structured(letter.payload) == bad
    assert handled() == [good.id]


def test_an_outage_never_makes_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    def database_down(**kwargs: Any) -> bool:
        raise OperationalError("the database is down")

    monkeypatch.setattr("django_broadcaster.consumers.processing.keep_dead_letter", database_down)
    attempts: list[int] = []

    def fails_five_times(event: CloudEvent) -> None:
        attempts.append(1)
        if len(attempts) <= 5:
            raise OperationalError("the database is down")
        side_effect(event)

    event = published_event()
    stats = consumer_of([message(event)], fails_five_times).run()
    assert (stats.processed, stats.dead_lettered) == (1, 0)
    assert handled() == [event.id]


@pytest.mark.postgres
def test_an_outage_that_ends_before_the_dead_letter_does_not_make_one() -> None:
    # Found by the soak (tests/faults/test_soak.py): a PostgreSQL restart failed every attempt
    # of consume_kafka's event with "connection refused", each spent as a handler failure. Had
    # the last one failed just before the database came back, the dead letter, written on a new
    # connection a moment later, would have succeeded: a good event dead-lettered by an outage.
    # Here each of the first attempts loses its connection, as a restart does, and the database
    # is back for the dead letter.
    attempts: list[int] = []

    def loses_the_connection(event: CloudEvent) -> None:
        attempts.append(1)
        if len(attempts) <= QUICK.max_attempts:
            connection.connection.close()  # the server went away under the handler
        side_effect(event)

    event = published_event()
    stats = consumer_of([message(event)], loses_the_connection).run()
    assert (stats.processed, stats.dead_lettered) == (1, 0)
    assert handled() == [event.id]
    assert not InboxEntry.objects.filter(status=InboxStatus.FAILED).exists()


def test_events_with_over_long_keys_are_handled_and_do_not_hold_up_the_next() -> None:
    def poison(event: CloudEvent) -> None:
        if event.data == "poison":
            raise ValueError("cannot handle this")
        side_effect(event)

    fine = published_event(id="f" * 300, source="urn:" + "s" * 300)
    bad = published_event(id="b" * 300, data="poison")
    good = published_event()
    consumer = consumer_of([message(fine), message(bad), message(good), message(fine)], poison)
    stats = consumer.run()
    assert (stats.processed, stats.dead_lettered, stats.duplicates) == (2, 1, 1)
    assert handled() == sorted([fine.id, good.id])
    letter = InboxEntry.objects.failed().get()
    assert decode_structured(letter.payload) == bad


def test_a_dead_letter_the_database_refuses_is_kept_under_its_position(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import DataError

    from django_broadcaster.consumers import processing

    def refuses_event_keys(**fields: Any) -> bool:
        if fields["source"] != "test:list":
            raise DataError("value too long for type character varying(255)")
        return inbox_record_failure(**fields)

    inbox_record_failure = processing.keep_dead_letter
    monkeypatch.setattr(processing, "keep_dead_letter", refuses_event_keys)
    bad, good = published_event(), published_event()
    consumer = consumer_of([message(bad, "1-0"), message(good, "2-0")], lambda event: 1 / 0)
    assert consumer.run().dead_lettered == 2
    assert consumer.acked == ["1-0", "2-0"]
    letter = InboxEntry.objects.get(event_id="1-0")
    assert (letter.source, letter.event_type) == ("test:list", bad.event_type)
    assert "ZeroDivisionError" in letter.error and "DataError: value too long" in letter.error
    assert decode_structured(letter.payload) == bad


def test_an_undecodable_message_is_a_dead_letter_at_once() -> None:
    raw = message(None, "7", problem="not CloudEvents JSON", raw="{oops")
    consumer = consumer_of([raw])
    assert consumer.run().dead_lettered == 1
    letter = InboxEntry.objects.get()
    assert (letter.source, letter.event_id, letter.payload) == ("test:list", "7", "{oops")
    assert consumer.acked == ["7"]


def test_an_event_without_handlers_is_acknowledged_without_an_entry() -> None:
    consumer = consumer_of([message(published_event(event_type="nobody.cares"))])
    assert consumer.run().ignored == 1
    assert not InboxEntry.objects.exists()
    assert len(consumer.acked) == 1


def test_stopping_finishes_the_message_in_hand_and_acknowledges_only_what_is_done() -> None:
    events = [published_event() for _ in range(4)]

    def stop_after_second(event: CloudEvent) -> None:
        side_effect(event)
        if event == events[1]:
            consumer.stop()

    consumer = consumer_of([message(e) for e in events], stop_after_second)
    assert consumer.run().processed == 2
    assert consumer.acked == [events[0].id, events[1].id]


def test_stopping_during_a_retry_wait_abandons_the_message_unacknowledged() -> None:
    def fail_and_stop(event: CloudEvent) -> None:
        consumer.stop()
        raise RuntimeError("boom")

    slow = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=30))
    consumer = consumer_of([message(published_event())], fail_and_stop, policy=slow)
    stats = consumer.run()
    assert (stats.processed, stats.dead_lettered, consumer.acked) == (0, 0, [])
    assert not InboxEntry.objects.exists()


def test_dead_letters_are_replayed_kept_messages_decoded_again() -> None:
    from django_broadcaster.consumers import inbox
    from django_broadcaster.consumers.replay import Replayed, replay

    bad, keyless = published_event(), published_event()
    consumer_of([message(bad)], lambda event: 1 / 0).run()
    kafka = binary_message(keyless)  # 0.2.0 refused its empty key and kept the message
    kept = {"key": "", "headers": [[n, v.decode()] for n, v in kafka.headers]}
    kept["value"] = kafka.value.decode() if kafka.value else None
    inbox.keep_dead_letter(source="kafka:orders", event_id="0:7", payload=json.dumps(kept))
    inbox.keep_dead_letter(source="redis:orders", event_id="1-0", error="trimmed")
    registry = EventRegistry()
    registry.register(TYPE)(side_effect)

    results = [replay(entry, registry) for entry in InboxEntry.objects.failed()]

    assert sorted(r.value for r in results) == ["failed", "processed", "processed"]
    assert Replayed.FAILED in results  # the trimmed message: still no event
    assert handled() == sorted([bad.id, keyless.id])
    assert list(InboxEntry.objects.failed().values_list("event_id", flat=True)) == ["1-0"]


def test_consumers_read_consumer_registry_not_the_local_handlers(global_handlers: Any) -> None:
    global_handlers(event_registry, TYPE, lambda event: 1 / 0)  # a local handler: never here
    global_handlers(consumer_registry, TYPE, side_effect)
    event = published_event()
    assert ListConsumer([message(event)]).run().processed == 1
    assert handled() == [event.id]


def test_a_consumer_with_handlers_only_on_event_registry_refuses_to_start(
    global_handlers: Any,
) -> None:
    global_handlers(event_registry, TYPE, side_effect)  # where 0.2.0 consumers found them
    with pytest.raises(BroadcasterImproperlyConfigured, match=r"@consumer_registry\.register"):
        ListConsumer([])
    event = published_event()  # the explicit opt-in to 0.2.0's behaviour
    assert ListConsumer([message(event)], registry=event_registry).run().processed == 1


@pytest.mark.parametrize("raised", [SystemExit(0), KeyboardInterrupt()], ids=["exit", "interrupt"])
def test_a_handler_raising_a_base_exception_is_a_dead_letter_not_a_crash(
    raised: BaseException,
) -> None:
    # 0.2.0 let it out of consume_redis: every restart met it again, and the entries behind it
    # were never handled.
    bad, good = published_event(), published_event()

    def handler(event: CloudEvent) -> None:
        if event.id == bad.id:
            raise raised
        side_effect(event)

    stats = consumer_of([message(bad), message(good)], handler).run()
    assert (stats.dead_lettered, stats.processed) == (1, 1)
    assert handled() == [str(good.id)]
    entry = InboxEntry.objects.get(status=InboxStatus.FAILED)
    assert entry.error.startswith(type(raised).__name__)
