"""Destination names from the event: templates, callables, sanitising, and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.backends.naming import AMQP, KAFKA, REDIS, URL, DestinationName
from django_broadcaster.checks import check_settings
from django_broadcaster.events import CloudEvent

EVENT = CloudEvent(
    "order.paid",
    "https://shop.example.com/orders",
    subject="order/42",
    extensions={"tenant": "acme", "partitionkey": "customer-7"},
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("events", "events"),
        ("events.{type}", "events.order.paid"),
        ("{source_host}.{type}", "shop.example.com.order.paid"),
        ("{ext_tenant}-{type}", "acme-order.paid"),
        ("{type}.{subject}", "order.paid.order_42"),  # '/' is not legal in a topic
        ("{type}.{source}", "order.paid.https___shop.example.com_orders"),
        ("x.{ext_missing}", "x."),
    ],
)
def test_a_kafka_template_makes_a_legal_topic(template: str, expected: str) -> None:
    assert DestinationName(template, KAFKA).resolve(EVENT) == (expected, ...)


def test_a_redis_template_keeps_printable_characters() -> None:
    name = DestinationName("{source}|{subject}", REDIS)
    assert name.resolve(EVENT)[0] == "https://shop.example.com/orders|order/42"
    long = CloudEvent("t", "s", subject="é" + "x" * 1000)
    assert name.resolve(long)[0] == "s|é" + "x" * 509  # bounded to 512


@pytest.mark.parametrize("value", [".", ".."])
def test_a_kafka_topic_is_never_dot_or_dot_dot(value: str) -> None:
    event = CloudEvent("t", "s", extensions={"name": "x"})
    name = DestinationName("{subject}", KAFKA)
    assert name.resolve(CloudEvent("t", "s", subject=value))[0] == "_" * len(value)
    with pytest.raises(ValueError, match="empty"):
        name.resolve(event)


def test_a_long_kafka_topic_is_cut_to_249() -> None:
    long = CloudEvent("t" * 300, "s")
    assert len(DestinationName("{type}", KAFKA).resolve(long)[0]) == 249


def test_a_callable_names_the_topic_and_may_choose_the_key() -> None:
    def by_tenant(event: CloudEvent) -> Any:
        return f"tenant.{event.extensions['tenant']}", event.subject

    assert DestinationName(by_tenant, KAFKA).resolve(EVENT) == ("tenant.acme", "order/42")
    assert DestinationName(lambda e: "a b", KAFKA).resolve(EVENT) == ("a_b", ...)
    with pytest.raises(ValueError, match="not a string"):
        DestinationName(lambda e: 3, REDIS).resolve(EVENT)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("events.{id}", "names {id}"),
        ("events.{time}", "names {time}"),
        ("events.{tenant}", "names {tenant}"),  # an extension is written ext_tenant
        ("events.{type!r}", "names {type}"),
        ("events.{type:>10}", "names {type}"),
        ("events.{0}", "names {0}"),
        ("events/{type}", "character Kafka refuses"),
        ("events.{type", "malformed"),
        ("..", "must be 1-249"),
        ("", "non-empty"),
    ],
)
def test_a_template_that_cannot_make_a_legal_name_is_refused(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("{", r"\{")):
        DestinationName(template, KAFKA)


def test_a_redis_brace_is_written_twice() -> None:
    assert DestinationName("events{{a}}", REDIS).resolve(EVENT) == ("events{a}", ...)


@pytest.mark.parametrize(
    ("backend", "options"),
    [
        (
            "django_broadcaster.backends.KafkaBackend",
            {"bootstrap_servers": "x:1", "topic": "a/{type}"},
        ),
        ("django_broadcaster.backends.KafkaBackend", {"bootstrap_servers": "x:1", "topic": "{id}"}),
        ("django_broadcaster.backends.RedisStreamBackend", {"stream_name": "s.{data}"}),
        (
            "django_broadcaster.backends.RedisStreamBackend",
            {"stream_name": "s.{type}", "retention": "consumed"},
        ),
    ],
)
def test_manage_py_check_refuses_a_template_that_cannot_work(
    backend: str, options: dict[str, object]
) -> None:
    config = {"BACKENDS": {"x": {"BACKEND": backend, "OPTIONS": options}}}
    with override_settings(BROADCASTER=config):
        messages = check_settings()
    assert [m.id for m in messages] == ["django_broadcaster.E003"]
    assert "Backend 'x'" in messages[0].msg


def test_an_amqp_routing_key_is_cut_to_255_bytes_never_inside_a_character() -> None:
    event = CloudEvent("order.paid", "/shop", subject="é" * 200)
    name, _ = DestinationName("k.{subject}", AMQP).resolve(event)
    assert len(name.encode()) == 255 - 1  # the half of the last "é" is dropped
    assert name == "k." + "é" * 126


def test_a_url_template_percent_encodes_each_field() -> None:
    event = CloudEvent("order.paid", "/shop", subject="a/../b?x=1&y#z é")
    template = DestinationName("https://hooks.example.com/in/{type}?s={subject}", URL)
    name, _ = template.resolve(event)
    assert name == "https://hooks.example.com/in/order.paid?s=a%2F..%2Fb%3Fx%3D1%26y%23z%20%C3%A9"
    assert template.prefix == "https://hooks.example.com/in/"
