"""The AsyncAPI document: channels per backend kind, typed payloads, routes, the official parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_broadcaster.asyncapi import document
from tests.asyncapi.events import partner_url
from tests.asyncapi.parser import errors

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_dGVzdHMtb25seS13ZWJob29rLXNlY3JldC0zMi1ieXRlcyE="
BACKENDS = {
    "orders": {
        "BACKEND": "django_broadcaster.backends.KafkaBackend",
        "OPTIONS": {"bootstrap_servers": "127.0.0.1:9092", "topic": "events.{type}"},
    },
    "audit": {
        "BACKEND": "django_broadcaster.backends.KafkaBackend",
        "OPTIONS": {"bootstrap_servers": "k1:9092,k2:9092", "topic": "audit"}
        | {"content_mode": "structured"},
    },
    "stream": {
        "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
        "OPTIONS": {"url": "redis://:s3cret@cache:6380/1", "stream_name": "{source_host}.{type}"},
    },
    "rabbit": {
        "BACKEND": "django_broadcaster.backends.RabbitMQBackend",
        "OPTIONS": {"url": "amqp://guest:hidden@mq:5672/shop", "exchange": "amq.topic"},
    },
    "hook": {
        "BACKEND": "django_broadcaster.backends.WebhookBackend",
        "OPTIONS": {"url": "https://partner.example/in?token=t0ken", "secrets": [SECRET]},
    },
    "memory": {"BACKEND": "django_broadcaster.backends.LocMemBackend"},
}
ROUTES = [
    {"TYPES": "order.*", "BACKENDS": ["orders", "stream"]},
    {"TYPES": ["invoice.sent", "user.created"], "BACKENDS": ["hook", "rabbit", "audit"]},
]
ASYNCAPI = {
    "TITLE": "Shop",
    "VERSION": "2.1.0",
    "EVENTS": ["tests.asyncapi.events.OrderPlaced", "tests.asyncapi.events.InvoiceSent"],
}


@pytest.fixture
def described() -> Iterator[dict[str, Any]]:
    settings = {"BACKENDS": BACKENDS, "ROUTES": ROUTES, "ASYNCAPI": ASYNCAPI}
    with override_settings(BROADCASTER=settings):
        yield document()


def resolve(found: dict[str, Any], ref: dict[str, str]) -> Any:
    value: Any = found
    for part in ref["$ref"].removeprefix("#/").split("/"):
        value = value[part]
    return value


def channel_messages(found: dict[str, Any], channel: str) -> dict[str, Any]:
    return {k: resolve(found, ref) for k, ref in found["channels"][channel]["messages"].items()}


def test_each_backend_with_a_channel_gets_a_channel_server_and_send_operation(
    described: dict[str, Any],
) -> None:
    assert described["asyncapi"] == "3.0.0"
    assert described["info"] == {"title": "Shop", "version": "2.1.0"}
    assert set(described["channels"]) == {"orders", "audit", "stream", "rabbit", "hook"}
    assert described["servers"]["audit"] == {"host": "k1:9092", "protocol": "kafka"}
    assert described["servers"]["stream"] == {"host": "cache:6380", "protocol": "redis"}
    assert "s3cret" not in json.dumps(described) and "hidden" not in json.dumps(described)
    assert "t0ken" not in json.dumps(described)
    operation = described["operations"]["send.hook"]
    assert operation["action"] == "send" and operation["channel"] == {"$ref": "#/channels/hook"}
    assert operation["bindings"]["http"]["method"] == "POST"


def test_fixed_and_templated_names_become_addresses_and_parameters(
    described: dict[str, Any],
) -> None:
    channels = described["channels"]
    assert channels["audit"]["address"] == "audit" and "parameters" not in channels["audit"]
    assert channels["orders"]["address"] == "events.{type}"
    assert set(channels["orders"]["parameters"]) == {"type"}
    assert set(channels["stream"]["parameters"]) == {"source_host", "type"}
    assert channels["rabbit"]["address"] == "{type}"  # no routing_key: the event's type
    assert channels["rabbit"]["bindings"]["amqp"]["exchange"] == {
        "name": "amq.topic",
        "durable": True,
        "type": "topic",
    }
    assert channels["hook"]["address"] == "/in"


def test_a_callable_name_leaves_the_address_unknown() -> None:
    kafka = {**BACKENDS["orders"], "OPTIONS": {"bootstrap_servers": "k:9092", "topic": str}}
    with override_settings(BROADCASTER={"BACKENDS": {"k": kafka}}):
        channel = document()["channels"]["k"]
    assert channel["address"] is None and "builtins.str" in channel["description"]


def test_a_templated_webhook_url_gives_a_path_with_parameters() -> None:
    options = {**BACKENDS["hook"]["OPTIONS"], "url": "https://partner.example/in/{type}?t=1"}
    hook = {**BACKENDS["hook"], "OPTIONS": options}
    with override_settings(BROADCASTER={"BACKENDS": {"hook": hook}}):
        found = document()
    channel = found["channels"]["hook"]
    assert channel["address"] == "/in/{type}" and set(channel["parameters"]) == {"type"}
    assert found["servers"]["hook"] == {"host": "partner.example", "protocol": "https"}
    assert errors(found) == []


def test_a_callable_webhook_url_leaves_the_address_and_server_unknown() -> None:
    options = {**BACKENDS["hook"]["OPTIONS"], "url": partner_url}
    hook = {**BACKENDS["hook"], "OPTIONS": options}
    with override_settings(BROADCASTER={"BACKENDS": {"hook": hook}}):
        found = document()
    channel = found["channels"]["hook"]
    assert channel["address"] is None and "partner_url" in channel["description"]
    assert "servers" not in channel and found["servers"] == {}
    assert errors(found) == []


def test_routes_decide_which_types_reach_which_channel(described: dict[str, Any]) -> None:
    messages = {name: set(c["messages"]) for name, c in described["channels"].items()}
    assert messages["orders"] == {"order.placed", "other"}
    assert messages["hook"] == {"invoice.sent", "user.created", "other"}
    assert messages["audit"] == messages["rabbit"] == messages["hook"]


def test_a_catch_all_rule_keeps_other_types_off_the_channels_it_does_not_name() -> None:
    routes = [*ROUTES, {"TYPES": "*", "BACKENDS": ["orders"]}]
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS, "ROUTES": routes}):
        found = document()
    assert set(found["channels"]["hook"]["messages"]) == {"invoice.sent", "user.created"}
    assert "other" in found["channels"]["orders"]["messages"]


def test_typed_payloads_have_their_classes_json_schema(described: dict[str, Any]) -> None:
    schemas = described["components"]["schemas"]
    assert schemas["order.placed"]["properties"]["order_id"]["type"] == "integer"
    invoice = schemas["invoice.sent"]
    assert invoice["properties"]["lines"]["items"] == {"$ref": "#/components/schemas/Line"}
    assert schemas["Line"]["properties"]["quantity"]["minimum"] == 1
    binary = channel_messages(described, "orders")["order.placed"]
    assert binary["payload"] == {"$ref": "#/components/schemas/order.placed"}
    untyped = channel_messages(described, "hook")["user.created"]
    assert "Untyped" in untyped["summary"]


def test_binary_messages_carry_the_headers_each_binding_writes(
    described: dict[str, Any],
) -> None:
    kafka = channel_messages(described, "orders")["order.placed"]["headers"]
    assert kafka["properties"]["ce_type"] == {"const": "order.placed"}
    assert {"ce_id", "ce_source", "ce_specversion", "ce_time"} <= set(kafka["required"])
    assert "content-type" in kafka["properties"]
    amqp = channel_messages(described, "rabbit")["invoice.sent"]["headers"]["properties"]
    assert "cloudEvents_id" in amqp and "content-type" not in amqp
    http = channel_messages(described, "hook")["invoice.sent"]["headers"]
    assert {"ce-id", "webhook-id", "webhook-signature"} <= set(http["required"])


def test_structured_and_stream_messages_carry_the_envelope(described: dict[str, Any]) -> None:
    audit = channel_messages(described, "audit")["invoice.sent"]
    assert audit["contentType"].startswith("application/cloudevents+json")
    assert audit["payload"]["properties"]["type"] == {"const": "invoice.sent"}
    assert audit["payload"]["properties"]["data"] == {"$ref": "#/components/schemas/invoice.sent"}
    assert audit["examples"][0]["payload"]["data"] == {"lines": [], "number": "F-1"}
    entry = channel_messages(described, "stream")["order.placed"]["payload"]
    assert set(entry["required"]) == {
        "cloud_event",
        "event_id",
        "event_type",
        "source",
        "timestamp",
    }


def test_the_official_parser_finds_no_error(described: dict[str, Any]) -> None:
    assert errors(described) == []


@pytest.mark.parametrize("mode", ["structured", "batched"])
def test_the_official_parser_takes_every_webhook_mode(mode: str) -> None:
    hook = {**BACKENDS["hook"], "OPTIONS": {**BACKENDS["hook"]["OPTIONS"], "mode": mode}}
    settings = {"BACKENDS": {**BACKENDS, "hook": hook}, "ROUTES": ROUTES, "ASYNCAPI": ASYNCAPI}
    with override_settings(BROADCASTER=settings):
        assert errors(document()) == []


def test_the_test_projects_document_passes_the_parser() -> None:
    found = document()
    assert found["channels"] == {}  # the suite's one backend is locmem: no channel to show
    assert errors(found) == []


def test_the_example_projects_document_passes_the_parser(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SHOP_BROADCASTER": "redis,kafka,webhook,rabbitmq",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    output = tmp_path / "shop.json"
    done = subprocess.run(
        [sys.executable, "manage.py", "outbox_asyncapi", "--output", str(output)],
        cwd=ROOT / "example",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(output.read_text())
    assert set(found["channels"]) == {"redis", "kafka", "webhook", "rabbitmq"}
    assert errors(found) == []


def test_the_command_writes_json_or_yaml(tmp_path: Path) -> None:
    settings = {"BACKENDS": BACKENDS, "ROUTES": ROUTES, "ASYNCAPI": ASYNCAPI}
    with override_settings(BROADCASTER=settings):
        call_command("outbox_asyncapi", "--output", str(tmp_path / "a.json"))
        call_command("outbox_asyncapi", "--format", "yaml", "--output", str(tmp_path / "a.yaml"))
        expected = document()
    assert json.loads((tmp_path / "a.json").read_text()) == expected
    assert yaml.safe_load((tmp_path / "a.yaml").read_text()) == expected


def test_the_command_names_a_settings_problem() -> None:
    with (
        override_settings(BROADCASTER={"ASYNCAPI": {"TITEL": "x"}}),
        pytest.raises(CommandError, match="unknown key 'TITEL'"),
    ):
        call_command("outbox_asyncapi")


def test_a_dead_letter_channel_lists_the_dead_letters_of_what_fails_into_it() -> None:
    # order.* fails into dead (the backends' DEAD_LETTER), the invoice rule into parked (its own).
    backends = {
        **BACKENDS,
        "orders": {**BACKENDS["orders"], "DEAD_LETTER": "dead"},
        "stream": {**BACKENDS["stream"], "DEAD_LETTER": "dead"},
        "dead": {**BACKENDS["audit"], "OPTIONS": {**BACKENDS["audit"]["OPTIONS"], "topic": "dlq"}},
        "parked": {**BACKENDS["rabbit"], "OPTIONS": {**BACKENDS["rabbit"]["OPTIONS"]}},
    }
    routes = [ROUTES[0], {**ROUTES[1], "DEAD_LETTER": "parked"}]
    settings = {"BACKENDS": backends, "ROUTES": routes, "ASYNCAPI": ASYNCAPI}
    with override_settings(BROADCASTER=settings):
        found = document()
    assert set(found["channels"]["orders"]["messages"]) == {"order.placed", "other"}
    dead = channel_messages(found, "dead")
    assert set(dead) == {"deadletter.order.placed", "deadletter.other"}  # no ordinary event
    envelope = dead["deadletter.order.placed"]["payload"]  # structured mode
    assert envelope["properties"]["type"] == {"const": "order.placed"}
    assert set(envelope["required"]) >= {"deadletterreason", "deadletterdest", "deadletterattempts"}
    parked = channel_messages(found, "parked")
    assert set(parked) == {"deadletter.invoice.sent", "deadletter.user.created"}
    headers = parked["deadletter.invoice.sent"]["headers"]  # binary mode
    assert {"cloudEvents_deadletterdest", "cloudEvents_deadlettererror"} <= set(headers["required"])
    assert errors(found) == []
