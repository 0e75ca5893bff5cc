"""Routes and templated destinations against the real brokers: where each event lands."""

from __future__ import annotations

import json
import signal
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from django_broadcaster.backends import create_backends, kafka
from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker import Worker
from harness.polling import poll
from tests.factories import published_event
from tests.integration.test_end_to_end import read_stream, read_topic
from tests.integration.test_kafka_backend import consume, require_confluent_kafka
from tests.workers import start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.kafka]

ROUTED = ["order.paid", "user.created", "invoice.sent"]
RULES = [
    {"TYPES": "order.*", "BACKENDS": ["kafka", "redis"]},
    {"TYPES": ["user.*", "invoice.*"], "BACKENDS": ["kafka", "redis"], "MAX_RETRIES": 9},
]


@pytest.fixture
def routed(redis_url: str, kafka_bootstrap_servers: str, unique_name: str) -> Iterator[None]:
    """Route the three types to Kafka and Redis, each to its own topic and stream."""
    backends = {
        "kafka": {
            "BACKEND": "django_broadcaster.backends.KafkaBackend",
            "OPTIONS": {
                "bootstrap_servers": kafka_bootstrap_servers,
                "topic": unique_name + ".{type}",
            },
        },
        "redis": {
            "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
            "OPTIONS": {"url": redis_url, "stream_name": unique_name + ".{type}"},
        },
        "audit": {"BACKEND": "django_broadcaster.backends.LocMemBackend"},
    }
    with override_settings(BROADCASTER={"BACKENDS": backends, "ROUTES": RULES}):
        yield


def deliver() -> dict[str, Any]:
    backends = create_backends()
    worker = Worker(backends=backends, registry=EventRegistry(), overlap=False)
    try:
        worker.run_once()
    finally:
        worker.close()
    return backends


def test_three_routed_types_land_in_three_topics_and_three_streams(
    routed: None, redis_client: Any, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    for event_type in ROUTED:
        publisher.publish_event(event_type, "/shop", {"type": event_type})
    publisher.publish_event("stock.low", "/shop", {"type": "stock.low"})  # no rule takes it
    backends = deliver()
    assert not OutboxEvent.objects.exclude(status=Status.PUBLISHED).exists()

    for event_type in ROUTED:
        name = f"{unique_name}.{event_type}"
        assert [e.get_type() for e in read_stream(redis_client, name)] == [event_type]
        assert [e.get_type() for e in read_topic(kafka_bootstrap_servers, name, 1)] == [event_type]
    assert [e.event_type for e in backends["audit"].events] == ["stock.low"]  # type: ignore[attr-defined]
    assert len(read_stream(redis_client, f"{unique_name}.stock.low")) == 1
    rows = {row.event_type: row for row in OutboxEvent.objects.all()}
    assert rows["order.paid"].backends == ["kafka", "redis"]
    assert rows["stock.low"].backends is None  # every backend, as without routes
    assert (rows["order.paid"].max_retries, rows["user.created"].max_retries) == (5, 9)


def test_the_calls_backends_win_over_the_route(
    routed: None, redis_client: Any, unique_name: str
) -> None:
    publisher.publish_event("order.paid", "/shop", backends=["audit"], max_retries=1)
    row = OutboxEvent.objects.get()
    assert (row.backends, row.max_retries) == (["audit"], 1)
    backends = deliver()
    assert OutboxEvent.objects.get().status == Status.PUBLISHED
    assert len(backends["audit"].events) == 1  # type: ignore[attr-defined]
    assert redis_client.exists(f"{unique_name}.order.paid") == 0


def test_route_policy_defaults_apply_and_the_call_overrides_them() -> None:
    rules = [
        {
            "TYPES": "order.*",
            "BACKENDS": ["default"],
            "MAX_RETRIES": 12,
            "PRIORITY": 40,
            "EXPIRES_AFTER": timedelta(minutes=5),
        }
    ]
    default = {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}
    with override_settings(BROADCASTER={"BACKENDS": default, "ROUTES": rules}):
        before = timezone.now()
        defaulted = publisher.publish_event("order.paid", "/shop")
        expires = before + timedelta(hours=1)
        chosen = publisher.publish_event(
            "order.paid", "/shop", max_retries=0, priority=-3, expires_at=expires
        )
        [bulk] = publisher.publish_events([CloudEvent("order.paid", "/shop")], priority=2)
    assert (defaulted.max_retries, defaulted.priority) == (12, 40)
    assert defaulted.expires_at is not None
    assert timedelta(minutes=5) <= defaulted.expires_at - before < timedelta(minutes=6)
    assert defaulted.extensions["expirytime"]  # sent with the event, as an own expiry is
    assert (chosen.max_retries, chosen.priority) == (0, -3)
    assert chosen.expires_at == expires
    assert (bulk.max_retries, bulk.priority) == (12, 2)
    stored = OutboxEvent.objects.get(pk=defaulted.pk)
    assert (stored.max_retries, stored.priority, stored.backends) == (12, 40, ["default"])


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_keep_each_keys_order_in_a_routed_stream(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    keys, per_key = 30, 40
    flaky = {
        "BACKEND": "tests.doubles.FlakyRedisBackend",
        "OPTIONS": {
            "url": redis_url,
            "stream_name": unique_name + ".{type}",
            "failure_rate": 0.1,
        },
    }
    rules = [{"TYPES": ["order.*", "user.*"], "BACKENDS": ["flaky"]}]
    with override_settings(BROADCASTER={"BACKENDS": {"flaky": flaky}, "ROUTES": rules}):
        publisher.publish_events(
            [
                CloudEvent(
                    "order.paid" if key % 2 else "user.created",
                    "/shop",
                    {"key": key, "seq": seq},
                    extensions={"partitionkey": f"k{key}"},
                )
                for seq in range(per_key)
                for key in range(keys)
            ],
            max_retries=1000,
        )
    fast = {"RETRY_BASE_DELAY": 0.01, "RETRY_MAX_DELAY": 0.05, "POLL_INTERVAL": 0.01}
    total = keys * per_key
    with ExitStack() as running:
        workers = [
            running.enter_context(
                start_worker("--batch-size", "50", backends={"flaky": flaky}, settings=fast)
            )
            for _ in range(2)
        ]
        poll(
            lambda: OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == total,
            120,
            f"{total} events to be published",
        )
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [worker.wait() for worker in workers] == [0, 0]
    arrived: dict[int, list[int]] = defaultdict(list)
    for event_type, parity in (("order.paid", 1), ("user.created", 0)):
        for _, fields in redis_client.xrange(f"{unique_name}.{event_type}"):
            data = json.loads(fields[b"cloud_event"])["data"]
            assert data["key"] % 2 == parity  # each key's events in its type's stream only
            arrived[data["key"]].append(data["seq"])
    assert len(arrived) == keys
    assert all(seqs == list(range(per_key)) for seqs in arrived.values())
    assert OutboxEvent.objects.filter(retry_count__gt=0).exists()  # failures did happen


def by_tenant(event: CloudEvent) -> tuple[str, str | None]:
    """Name the topic after the tenant, and key each message by the subject."""
    return f"{event.source.strip('/')}.{event.extensions['tenant']}", event.subject


@pytest.mark.parametrize("backend", ["KafkaBackend", "ConfluentKafkaBackend"])
def test_both_kafka_producers_take_templates_and_callables(
    backend: str, kafka_bootstrap_servers: str, unique_name: str
) -> None:
    if backend == "ConfluentKafkaBackend":
        require_confluent_kafka()
    backend_class = getattr(kafka, backend)
    events = [
        published_event(
            event_type=f"{t}.x",
            source=f"/{unique_name}",
            subject=f"s{n}",
            extensions={"tenant": t},
        )
        for n, t in enumerate(["acme", "globex", "acme"])
    ]
    with backend_class(
        "k", bootstrap_servers=kafka_bootstrap_servers, topic=by_tenant
    ) as by_callable:
        assert by_callable.send_batch(events) == {}
    with backend_class(
        "k", bootstrap_servers=kafka_bootstrap_servers, topic=unique_name + ".t.{type}"
    ) as by_template:
        assert by_template.send_batch(events) == {}
    acme = consume(kafka_bootstrap_servers, f"{unique_name}.acme", 2)
    assert sorted(record.key for record in acme) == [b"s0", b"s2"]  # the callable's keys
    assert len(consume(kafka_bootstrap_servers, f"{unique_name}.globex", 1)) == 1
    assert len(consume(kafka_bootstrap_servers, f"{unique_name}.t.acme.x", 2)) == 2


def test_a_routes_backoff_spaces_its_events_retries() -> None:
    rejecting = {"BACKEND": "tests.doubles.RejectingBackend"}
    hour = timedelta(hours=1)
    rules = [
        {"TYPES": "order.*", "BACKENDS": ["x"], "RETRY_BASE_DELAY": hour, "RETRY_MAX_DELAY": hour}
    ]
    with override_settings(BROADCASTER={"BACKENDS": {"x": rejecting}, "ROUTES": rules}):
        routed_row = publisher.publish_event("order.paid", "/shop", {"reject": True})
        plain_row = publisher.publish_event("user.created", "/shop", {"reject": True})
        before = timezone.now()
        deliver()
    routed_row.refresh_from_db()
    plain_row.refresh_from_db()
    assert routed_row.retry_count == plain_row.retry_count == 1
    # Jitter keeps a delay between half and all of it: the route's hour, the default's 2 s.
    assert timedelta(minutes=30) <= routed_row.scheduled_at - before <= hour
    assert plain_row.scheduled_at - before <= timedelta(seconds=3)
