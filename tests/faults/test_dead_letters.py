"""Drill 10: events that every attempt refuses end in dead letters, even if those are down.

Two destinations refuse every event of the type ``drill.poison``, each in its own real way: the
Redis stream of that type (``<name>.{type}``) is a string key, so ``XADD`` answers
``WRONGTYPE``; and the poison events are larger than the Kafka producer's ``max_request_size``
(set low), so Kafka refuses them for good. Redis's ``DEAD_LETTER`` is a stream on a Redis of the
drill's own, stopped for :data:`OUTAGE_S` from before the first dead letter is due; Kafka's is
another topic of the shared broker. The good events of another type go through untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from harness.process import Process
from tests.integration.test_end_to_end import read_stream, read_topic

from .drill import kafka_backend, poll, publish, redis_backend, report
from .observe import stream_ids
from .services import RedisServer

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.kafka,
    pytest.mark.django_db(transaction=True),
]

GOOD = 200
POISON = 5
MAX_RETRIES = 1
OUTAGE_S = 30.0
MAX_REQUEST_SIZE = 4096
SETTINGS = {"BATCH_SIZE": 100, "RETRY_BASE_DELAY": 1, "RETRY_MAX_DELAY": 2}
DEAD_STREAM = "dead-letters"


def test_refused_events_reach_their_dead_letters_through_an_outage(
    workers: Callable[..., Process],
    own_redis: RedisServer,
    redis_url: str,
    redis_client: Any,
    kafka_bootstrap_servers: str,
    unique_name: str,
) -> None:
    redis_client.set(f"{unique_name}.drill.poison", "not a stream")  # WRONGTYPE for XADD
    dead_topic = f"{unique_name}.dead"
    backends = {
        "redis": {
            **redis_backend(redis_url, unique_name + ".{type}"),
            "DEAD_LETTER": "redis-dead",
        },
        "kafka": {
            **kafka_backend(
                kafka_bootstrap_servers,
                unique_name,
                producer_options={"max_request_size": MAX_REQUEST_SIZE},
            ),
            "DEAD_LETTER": "kafka-dead",
        },
        "redis-dead": redis_backend(own_redis.url, DEAD_STREAM),
        "kafka-dead": kafka_backend(kafka_bootstrap_servers, dead_topic),
    }
    own_redis.stop()
    stopped = time.monotonic()
    poison = publisher.publish_events(
        [CloudEvent("drill.poison", "https://drills.example.com", {"blob": "x" * 8000})] * POISON,
        max_retries=MAX_RETRIES,
    )
    poison_ids = sorted(str(row.pk) for row in poison)
    good = publish(GOOD, event_type="drill.good")
    run = workers(backends=backends, settings=SETTINGS)

    # Kafka's dead letters go out while Redis's wait, their retries spent once and no more.
    waiting = OutboxEvent.objects.filter(pk__in=poison_ids)
    poll(lambda: _dead_letter_states(waiting, "kafka") == {"delivered"}, 30, "Kafka's letters")
    poll(lambda: _dead_letter_states(waiting, "redis") == {"unavailable"}, 30, "deferrals")
    kafka_letters = read_topic(kafka_bootstrap_servers, dead_topic, POISON)
    assert set(waiting.values_list("status", "retry_count")) == {("pending", MAX_RETRIES + 1)}
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    assert set(waiting.values_list("status", "retry_count")) == {("pending", MAX_RETRIES + 1)}
    own_redis.start()
    back = time.monotonic()
    done_s = poll(
        lambda: waiting.filter(status=Status.FAILED).count() == POISON,
        60,
        "every poison event failed, its dead letters sent",
    )
    assert run.stop() == 0, run.tail()

    rows = {str(row.pk): row for row in OutboxEvent.objects.filter(pk__in=poison_ids)}
    client = redis.Redis.from_url(own_redis.url)
    try:
        redis_letters = read_stream(client, DEAD_STREAM)
    finally:
        client.close()
    report(
        "dead letters",
        f"{POISON} poison events dead-lettered to a Redis stopped {OUTAGE_S:.0f} s and to Kafka; "
        f"the last sent {done_s:.1f} s after Redis was back ({time.monotonic() - back:.1f} s); "
        f"{GOOD} good events untouched",
    )

    for letters, refused_at in ((redis_letters, "redis"), (kafka_letters, "kafka")):
        assert sorted(letter.get_id() for letter in letters) == poison_ids  # once each, all
        for letter in letters:
            assert letter.get_type() == "drill.poison"
            assert letter.get_data() == {"blob": "x" * 8000}
            assert letter.get_extension("deadletterdest") == refused_at
            assert letter.get_extension("deadletterreason") == "retriesexhausted"
            assert str(letter.get_extension("deadletterattempts")) == str(MAX_RETRIES + 1)
    assert all("WRONGTYPE" in _error(letter) for letter in redis_letters)
    assert all("MessageSizeTooLarge" in _error(letter) for letter in kafka_letters)
    for row in rows.values():
        assert row.retry_count == MAX_RETRIES + 1  # the outage spent nothing
        assert row.delivery["dead-letter:redis"]["state"] == "delivered"
        assert row.delivery["dead-letter:kafka"] == {
            **row.delivery["dead-letter:kafka"],
            "attempts": 1,
        }
    # The first letter's call failed and it kept making the trials; letters that came while the
    # breaker was open were held, not called for, and woken when Redis was back.
    attempts = [row.delivery["dead-letter:redis"]["attempts"] for row in rows.values()]
    assert min(attempts) >= 1 and max(attempts) >= 2, attempts
    # The other type went everywhere it should, once, on its first attempt, and to no dead letter.
    assert set(OutboxEvent.objects.filter(pk__in=good).values_list("status", "retry_count")) == {
        (Status.PUBLISHED, 0)
    }
    assert sorted(stream_ids(redis_url, f"{unique_name}.drill.good")) == sorted(good)


def _dead_letter_states(rows: Any, destination: str) -> set[str]:
    entries = rows.values_list("delivery", flat=True)  # a new query each time
    return {entry.get(f"dead-letter:{destination}", {}).get("state") for entry in entries}


def _error(letter: Any) -> str:
    return str(letter.get_extension("deadlettererror"))
