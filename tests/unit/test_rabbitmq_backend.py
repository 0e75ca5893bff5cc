"""The RabbitMQ backend's options and messages, without a broker: building one never connects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cloudevents.core.bindings.amqp import AMQPMessage, from_binary, from_structured
from django.test import override_settings

from django_broadcaster.backends import RabbitMQBackend, rabbitmq
from django_broadcaster.backends.rabbitmq.messages import binary_message, structured_message
from django_broadcaster.checks import check_settings
from django_broadcaster.exceptions import BroadcasterImproperlyConfigured, InvalidEvent
from django_broadcaster.formats import JSON_FORMAT
from tests.factories import published_event

URL = "amqp://app:hunter2-s3cret@broker:5672/shop"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"url": "redis://broker"}, "url must start with one of ['amqp', 'amqps']"),
        ({"url": "amqp://app:pa#ss@broker/"}, "percent-encode it as %23"),
        ({"exchange": "bad name"}, "exchange must be a string"),
        ({"exchange": "x" * 256}, "exchange must be a string"),
        ({"routing_key": "k" * 256}, "routing_key must be 1-255 bytes with no control"),
        ({"routing_key": "é" * 128}, "routing_key must be 1-255 bytes"),
        ({"routing_key": "shop.{id}"}, "routing_key template 'shop.{id}' names {id}"),
        ({"routing_key": "a\tb.{type}"}, "holds a character RabbitMQ refuses"),
        ({"routing_key": 7}, "routing_key must be a non-empty string, a template or a callable"),
        ({"content_mode": "batched"}, "content_mode must be one of ['binary', 'structured']"),
        ({"mandatory": "yes"}, "mandatory must be True or False"),
        ({"send_timeout": 0}, "send_timeout must be a positive number"),
        ({"send_timeout": True}, "send_timeout must be a positive number"),
        ({"exchnage": "orders"}, "unknown option 'exchnage' (did you mean 'exchange'?)"),
    ],
)
def test_bad_options_are_refused_naming_the_alias(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(BroadcasterImproperlyConfigured) as info:
        RabbitMQBackend("events", **{"url": URL, **options})
    assert "Backend 'events' (RabbitMQBackend)" in str(info.value)
    assert problem in str(info.value)
    assert "pa#ss" not in str(info.value) and "hunter2" not in str(info.value)


def test_bad_options_fail_manage_py_check() -> None:
    backend = {"BACKEND": "django_broadcaster.backends.RabbitMQBackend", "OPTIONS": {"url": "x"}}
    with override_settings(BROADCASTER={"BACKENDS": {"events": backend}}):
        [error] = check_settings()
    assert error.id == "django_broadcaster.E003"
    assert "url must start with" in error.msg


def test_defaults_and_the_masked_url() -> None:
    backend = RabbitMQBackend("events", url=URL)

    assert (backend.exchange, backend.routing_key, backend.content_mode) == (
        "amq.topic",
        None,
        "binary",
    )
    assert backend.mandatory is True
    assert backend.send_timeout == 2.0  # SEND_DEADLINE's default
    assert repr(backend) == (
        "<RabbitMQBackend alias='events' server='amqp://app:***@broker:5672/shop' "
        "exchange='amq.topic'>"
    )
    assert backend._parameters.heartbeat == 0


def test_send_timeout_follows_send_deadline_and_the_url_may_ask_for_heartbeats() -> None:
    with override_settings(BROADCASTER={"SEND_DEADLINE": timedelta(seconds=7)}):
        backend = RabbitMQBackend("events", url=URL + "?heartbeat=30")
    assert backend.send_timeout == 7.0
    assert backend._parameters.heartbeat == 30


def test_a_missing_pika_says_which_extra_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rabbitmq, "_MISSING", ImportError("No module named 'pika'"))
    with pytest.raises(BroadcasterImproperlyConfigured, match=r"django-broadcaster\[rabbitmq\]"):
        RabbitMQBackend("events", url=URL)


def sdk(message: Any) -> AMQPMessage:
    properties = {"content-type": message.content_type} if message.content_type else {}
    return AMQPMessage(properties, dict(message.headers), message.body)


@pytest.mark.parametrize("data", [{"order": 1}, ["a", 1, None], "text", 7.25, True, None])
def test_binary_messages_read_back_with_the_sdk(data: Any) -> None:
    event = published_event(data=data, extensions={"tenant": "acme", "attempt": 3})

    message = binary_message(event)

    decoded = from_binary(sdk(message), JSON_FORMAT)
    assert decoded.get_id() == event.id and decoded.get_time() == event.time
    assert decoded.get_data() == data
    assert message.headers["cloudEvents_attempt"] == "3"
    assert message.content_type == "application/json"


def test_structured_messages_read_back_with_the_sdk_and_carry_the_partition_key() -> None:
    event = published_event(extensions={"partitionkey": "customer-7"})

    message = structured_message(event)

    assert message.headers == {"cloudEvents_partitionkey": "customer-7"}
    assert from_structured(sdk(message), JSON_FORMAT).get_extension("partitionkey") == (
        "customer-7"
    )


def test_an_event_without_an_id_is_refused() -> None:
    event = published_event(id=None)
    for build in (binary_message, structured_message):
        with pytest.raises(InvalidEvent, match="no id"):
            build(event)
