"""The real ``consume_redis`` and ``consume_kafka`` commands, as subprocesses.

The subprocesses run :mod:`tests.consumer_app.handlers`, whose side effect is an outbox row per
handled event in the handler's transaction. A consumer killed mid-way and then restarted must
handle every event exactly once: as many side effects as distinct events, none missing.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_broadcaster.backends import KafkaBackend, RedisStreamBackend
from django_broadcaster.backends.base import BaseBackend
from django_broadcaster.consumers.inbox import InboxEntry
from django_broadcaster.models import OutboxEvent
from django_broadcaster.registry import consumer_registry, event_registry
from harness.polling import poll
from harness.process import Process
from tests.consumer_app import HANDLED_TYPE, ORDER_TYPE
from tests.factories import published_event
from tests.workers import start_command

GROUP = "billing"


def start_consumer(command: str, *args: str, delay_s: float = 0.0) -> Process:
    """Start ``manage.py <command> args`` on the test database, with the test handlers."""
    env = {
        "TEST_EXTRA_APPS": json.dumps(["tests.consumer_app"]),
        "CONSUMER_TEST_DELAY_S": str(delay_s),
    }
    return start_command(command, *args, env=env)


def publish_twice(backend: BaseBackend, count: int) -> set[str]:
    """Send ``count`` events, then all of them again; return their ids."""
    events = [
        published_event(event_type=ORDER_TYPE, extensions={"partitionkey": f"k{n % 4}"})
        for n in range(count)
    ]
    with backend:
        assert backend.send_batch(events) == {}
        assert backend.send_batch(events) == {}
    return {str(event.id) for event in events}


def handled_ids() -> list[str]:
    rows = OutboxEvent.objects.filter(event_type=HANDLED_TYPE).values_list("data", flat=True)
    return [data["event"] for data in rows]


def kill_after(process: Process, handled: int) -> None:
    """SIGKILL ``process`` once it has handled ``handled`` events."""
    with process:
        poll(lambda: InboxEntry.objects.count() >= handled, 60, f"{handled} events handled")
        process.kill()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_consumer_killed_mid_way_then_replaced_handles_each_event_once(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    ids = publish_twice(RedisStreamBackend("r", url=redis_url, stream_name=unique_name), 60)
    common = ["--stream", unique_name, "--group", GROUP, "--url", redis_url, "--batch-size", "10"]

    first = start_consumer("consume_redis", *common, "--consumer", "first", delay_s=0.02)
    kill_after(first, 15)
    assert len(set(handled_ids())) < len(ids)
    with start_consumer(
        "consume_redis", *common, "--consumer", "second", "--claim-idle", "0", "--burst"
    ) as second:
        assert second.wait() == 0, second.output()

    assert sorted(handled_ids()) == sorted(ids), second.output()  # each once, none missing
    assert InboxEntry.objects.count() == len(ids)
    assert redis_client.xpending(unique_name, GROUP)["pending"] == 0


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_consumer_stops_on_sigterm_after_acknowledging_what_it_handled(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    publish_twice(RedisStreamBackend("r", url=redis_url, stream_name=unique_name), 40)
    args = ["--stream", unique_name, "--group", GROUP, "--url", redis_url, "--batch-size", "10"]
    with start_consumer("consume_redis", *args, delay_s=0.05) as consumer:
        poll(lambda: InboxEntry.objects.count() >= 5, 60, "5 events handled")
        assert consumer.stop(timeout=30) == 0, consumer.output()

    assert "Processed " in consumer.output()
    entries = dict(redis_client.xrange(unique_name))
    unacked = redis_client.xpending_range(unique_name, GROUP, "-", "+", 1000)
    unacked_events = {entries[row["message_id"]][b"event_id"].decode() for row in unacked}
    done = set(InboxEntry.objects.values_list("event_id", flat=True))
    assert done and not done & unacked_events
    assert sorted(handled_ids()) == sorted(done)


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_kafka_consumer_killed_mid_way_then_restarted_handles_each_event_once(
    kafka_bootstrap_servers: str, unique_name: str
) -> None:
    backend = KafkaBackend("k", bootstrap_servers=kafka_bootstrap_servers, topic=unique_name)
    ids = publish_twice(backend, 60)
    args = [
        *("--topic", unique_name, "--group", GROUP, "--batch-size", "10"),
        *("--bootstrap-servers", kafka_bootstrap_servers),
        *("--consumer-option", "session_timeout_ms=6000"),
        *("--consumer-option", "heartbeat_interval_ms=1000"),
    ]

    first = start_consumer("consume_kafka", *args, delay_s=0.02)
    kill_after(first, 15)
    assert len(set(handled_ids())) < len(ids)
    with start_consumer("consume_kafka", *args, "--burst") as second:
        assert second.wait() == 0, second.output()

    assert sorted(handled_ids()) == sorted(ids), second.output()
    assert InboxEntry.objects.count() == len(ids)


@pytest.mark.django_db
def test_without_a_url_the_redis_command_needs_exactly_one_redis_backend() -> None:
    with pytest.raises(CommandError, match="Give --url: .* has 0 RedisStreamBackend"):
        call_command("consume_redis", "--stream", "s", "--group", "g")


@pytest.mark.django_db
def test_the_kafka_command_checks_its_consumer_options() -> None:
    base = ["consume_kafka", "--topic", "t", "--group", "g", "--bootstrap-servers", "x:1"]
    with pytest.raises(CommandError, match="KEY=VALUE"):
        call_command(*base, "--consumer-option", "oops")
    with pytest.raises(CommandError, match="must not set"):
        call_command(*base, "--consumer-option", "group_id=other")


CONFLUENT = {
    "BACKEND": "django_broadcaster.backends.ConfluentKafkaBackend",
    "OPTIONS": {"bootstrap_servers": "127.0.0.1:1", "topic": "t"},
}


@pytest.mark.django_db
@override_settings(BROADCASTER={"BACKENDS": {"k": CONFLUENT}})
def test_the_kafka_command_takes_the_brokers_of_either_kafka_backend() -> None:
    # The brokers are found, so the command gets as far as its own options.
    with pytest.raises(CommandError, match="KEY=VALUE"):
        call_command("consume_kafka", "--topic", "t", "--group", "g", "--consumer-option", "oops")


def warnings_of(command: str, *args: str) -> str:
    """Run ``command`` in burst mode and return what it wrote on stderr."""
    stderr = StringIO()
    call_command(command, "--group", GROUP, "--burst", *args, stderr=stderr, stdout=StringIO())
    return stderr.getvalue()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_consuming_a_stream_a_backend_writes_is_warned_of_at_start(
    redis_url: str, redis_client: Any, unique_name: str, global_handlers: Any
) -> None:
    global_handlers(consumer_registry, ORDER_TYPE, lambda event: None)
    backend = {
        "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
        "OPTIONS": {"url": redis_url, "stream_name": unique_name},
    }
    other_database = redis_url.rsplit("/", 1)[0] + "/1"
    with override_settings(BROADCASTER={"BACKENDS": {"events": backend}}):
        assert "(django_broadcaster.W003)" in warnings_of("consume_redis", "--stream", unique_name)
        same = warnings_of("consume_redis", "--stream", unique_name, "--url", redis_url)
        assert "the Redis stream" in same and "the backend 'events' writes" in same
        assert "W003" not in warnings_of("consume_redis", "--stream", f"{unique_name}-b")
        elsewhere = warnings_of("consume_redis", "--stream", unique_name, "--url", other_database)
        assert "W003" not in elsewhere
        with override_settings(SILENCED_SYSTEM_CHECKS=["django_broadcaster.W003"]):
            assert "W003" not in warnings_of("consume_redis", "--stream", unique_name)
    type(redis_client).from_url(other_database).delete(unique_name)


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_consuming_a_topic_a_backend_writes_is_warned_of_at_start(
    kafka_bootstrap_servers: str, unique_name: str, global_handlers: Any
) -> None:
    global_handlers(consumer_registry, ORDER_TYPE, lambda event: None)
    backend = {
        "BACKEND": "django_broadcaster.backends.KafkaBackend",
        "OPTIONS": {"bootstrap_servers": kafka_bootstrap_servers, "topic": unique_name},
    }
    quick = ["--consumer-option", "session_timeout_ms=6000"]
    with override_settings(BROADCASTER={"BACKENDS": {"events": backend}}):
        warned = warnings_of("consume_kafka", "--topic", unique_name, *quick)
    assert "(django_broadcaster.W003)" in warned and f"topic {unique_name!r}" in warned


@pytest.mark.django_db
def test_a_consumer_command_refuses_handlers_left_on_event_registry(
    global_handlers: Any,
) -> None:
    global_handlers(event_registry, ORDER_TYPE, lambda event: None)
    args = ["--stream", "s", "--group", "g", "--url", "redis://127.0.0.1:1/0"]
    with pytest.raises(CommandError, match=r"Register the handlers .* @consumer_registry"):
        call_command("consume_redis", *args)
    with pytest.raises(CommandError, match="not an EventRegistry"):
        call_command("consume_redis", *args, "--registry", "django_broadcaster.registry.Handler")
    with pytest.raises(CommandError, match="cannot import"):
        call_command("consume_redis", *args, "--registry", "no.such.registry")


@pytest.mark.django_db(transaction=True)
def test_consume_redis_waits_for_a_redis_that_is_down_at_start() -> None:
    from tests.faults.services import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with start_consumer(
        "consume_redis", "--stream", "s", "--group", GROUP, "--url", url
    ) as consumer:
        consumer.wait_for_line("Broker unavailable", 30)
        assert consumer.stop(timeout=30) == 0, consumer.output()
    assert "Traceback" not in consumer.output()
    assert len(consumer.lines("Broker unavailable")) == 1
