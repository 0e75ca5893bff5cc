"""VALIDATE_DATA: data checked against JSON Schemas when published; nothing written on failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.exceptions import InvalidEvent
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from tests.asyncapi.events import REFUND, REFUND_URI, InvoiceSent, Line, OrderPlaced

pytestmark = pytest.mark.django_db
BACKENDS = {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}


def configured(**settings: Any) -> Any:
    return override_settings(BROADCASTER={"BACKENDS": BACKENDS, **settings})


@pytest.fixture
def validating() -> Iterator[None]:
    with configured(VALIDATE_DATA=True, SCHEMAS={REFUND_URI: REFUND}):
        yield


def test_without_validation_a_dataclass_with_wrong_types_is_written() -> None:
    publisher.publish(OrderPlaced(order_id="not a number", sku="A"))  # type: ignore[arg-type]
    assert OutboxEvent.objects.count() == 1


@pytest.mark.usefixtures("validating")
def test_a_typed_event_that_breaks_its_schema_fails_at_the_call_and_writes_nothing() -> None:
    bad = OrderPlaced(order_id="not a number", sku="A")  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent) as raised:
        publisher.publish(bad)
    message = str(raised.value)
    assert "'order.placed'" in message and "OrderPlaced" in message
    assert "$.order_id" in message and "'type'" in message and "the setting" in message
    assert OutboxEvent.objects.count() == 0


@pytest.mark.usefixtures("validating")
def test_valid_typed_events_are_written() -> None:
    publisher.publish(OrderPlaced(order_id=1, sku="A"))
    publisher.publish(InvoiceSent(number="F-7", lines=[Line(sku="A", quantity=2)]))
    assert OutboxEvent.objects.count() == 2


@pytest.mark.usefixtures("validating")
def test_a_registered_dataschema_checks_a_plain_event() -> None:
    publisher.publish_event("refund.made", "/shop", {"amount": 3}, dataschema=REFUND_URI)
    with pytest.raises(
        InvalidEvent, match=r"at \$\.amount, 0 is less than or equal .*'exclusiveMinimum'"
    ):
        publisher.publish_event("refund.made", "/shop", {"amount": 0}, dataschema=REFUND_URI)
    with pytest.raises(InvalidEvent, match=r"at \$, 'amount' is a required property"):
        publisher.publish_event("refund.made", "/shop", {}, dataschema=REFUND_URI)
    assert OutboxEvent.objects.count() == 1


@pytest.mark.usefixtures("validating")
def test_a_dataschema_not_registered_checks_nothing() -> None:
    publisher.publish_event("refund.made", "/shop", {}, dataschema="https://elsewhere/x.json")
    assert OutboxEvent.objects.count() == 1


def test_a_rule_turns_validation_on_for_its_events_only() -> None:
    routes = [{"TYPES": "order.*", "BACKENDS": ["default"], "VALIDATE_DATA": True}]
    with configured(ROUTES=routes, SCHEMAS={REFUND_URI: REFUND}):
        with pytest.raises(InvalidEvent, match="ROUTES rule 1"):
            publisher.publish(OrderPlaced(order_id="x", sku="A"))  # type: ignore[arg-type]
        publisher.publish_event("refund.made", "/shop", {}, dataschema=REFUND_URI)
    assert list(OutboxEvent.objects.values_list("event_type", flat=True)) == ["refund.made"]


def test_a_rule_turns_validation_off_for_its_events() -> None:
    routes = [{"TYPES": "order.*", "BACKENDS": ["default"], "VALIDATE_DATA": False}]
    with configured(ROUTES=routes, VALIDATE_DATA=True, SCHEMAS={REFUND_URI: REFUND}):
        publisher.publish(OrderPlaced(order_id="x", sku="A"))  # type: ignore[arg-type]
        with pytest.raises(InvalidEvent):
            publisher.publish_event("refund.made", "/s", "text", dataschema=REFUND_URI)
    assert OutboxEvent.objects.count() == 1


def test_a_class_registered_as_a_schema_checks_events_that_name_it() -> None:
    uri = "https://shop.example/schemas/invoice.json"
    with (
        configured(VALIDATE_DATA=True, SCHEMAS={uri: "tests.asyncapi.events.InvoiceSent"}),
        pytest.raises(InvalidEvent, match=r"at \$\.number, 'X' does not match"),
    ):
        publisher.publish_event("invoice.sent", "/b", {"number": "X", "lines": []}, dataschema=uri)
    assert OutboxEvent.objects.count() == 0


@pytest.mark.usefixtures("validating")
def test_one_bad_event_of_a_batch_writes_none() -> None:
    from django_broadcaster.events import CloudEvent

    good = CloudEvent("refund.made", "/s", {"amount": 1}, dataschema=REFUND_URI)
    bad = CloudEvent("refund.made", "/s", {"amount": -1}, dataschema=REFUND_URI)
    with pytest.raises(InvalidEvent):
        publisher.publish_events([good, bad])
    assert OutboxEvent.objects.count() == 0


def test_validation_off_imports_no_jsonschema() -> None:
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup();"
        "from django_broadcaster.publishers import publisher;"
        "from django_broadcaster.routing import route_for;"
        "print('jsonschema' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert done.stdout.strip() == "False"
