"""Typed event classes: their CloudEvent type, source and data, and rebuilding them."""

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import ClassVar

import pydantic
import pytest

from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import InvalidEvent
from django_broadcaster.typed import (
    data_of,
    event_type_of,
    from_cloud_event,
    source_of,
    to_cloud_event,
)


@dataclass(frozen=True)
class OrderCreated:
    event_type: ClassVar[str] = "order.created"
    source: ClassVar[str] = "shop/orders"
    order_id: int
    placed_on: date = date(2024, 5, 1)


@dataclass
class Moved:
    """An event with a data field named ``source``: data, not the CloudEvent source."""

    event_type: ClassVar[str] = "parcel.moved"
    source: str
    destination: str


class Refunded(pydantic.BaseModel):
    event_type: ClassVar[str] = "order.refunded"
    order_id: int
    amount: Decimal
    refund_id: uuid.UUID


@dataclass
class Untyped:
    value: int


def test_the_class_names_the_type_and_source() -> None:
    assert event_type_of(OrderCreated) == "order.created"
    assert source_of(OrderCreated) == "shop/orders"
    assert source_of(Refunded) is None


def test_a_data_field_is_never_taken_for_the_class_attribute() -> None:
    assert source_of(Moved) is None
    event = to_cloud_event(Moved(source="depot", destination="home"), source="parcels")
    assert (event.source, event.data) == ("parcels", {"source": "depot", "destination": "home"})


def test_a_class_without_event_type_is_refused() -> None:
    with pytest.raises(TypeError, match="Untyped names no CloudEvent type"):
        event_type_of(Untyped)


def test_dataclass_data_is_json_with_dates_as_strings() -> None:
    assert data_of(OrderCreated(order_id=1)) == {"order_id": 1, "placed_on": "2024-05-01"}


def test_pydantic_data_is_its_json_dump() -> None:
    refund_id = uuid.uuid4()
    refund = Refunded(order_id=1, amount=Decimal("9.50"), refund_id=refund_id)
    assert data_of(refund) == {"order_id": 1, "amount": "9.50", "refund_id": str(refund_id)}


@pytest.mark.parametrize("value", [{"order_id": 1}, OrderCreated, 42])
def test_other_objects_are_not_typed_events(value: object) -> None:
    with pytest.raises(TypeError, match="typed events are dataclass instances"):
        data_of(value)


def test_to_cloud_event_uses_the_class_source_unless_overridden() -> None:
    event = to_cloud_event(OrderCreated(order_id=1), subject="o-1")
    assert (event.event_type, event.source, event.subject) == (
        "order.created",
        "shop/orders",
        "o-1",
    )
    assert to_cloud_event(OrderCreated(order_id=1), source="elsewhere").source == "elsewhere"


def test_an_event_without_any_source_is_invalid() -> None:
    refund = Refunded(order_id=1, amount=Decimal(1), refund_id=uuid.uuid4())
    with pytest.raises(InvalidEvent, match="Refunded has no source"):
        to_cloud_event(refund)


def test_from_cloud_event_rebuilds_a_dataclass_with_the_sent_values() -> None:
    event = to_cloud_event(OrderCreated(order_id=3))
    rebuilt = from_cloud_event(OrderCreated, event)
    assert (rebuilt.order_id, rebuilt.placed_on) == (3, "2024-05-01")  # a dataclass keeps strings


def test_from_cloud_event_validates_a_pydantic_model() -> None:
    refund = Refunded(order_id=1, amount=Decimal("9.50"), refund_id=uuid.uuid4())
    assert from_cloud_event(Refunded, to_cloud_event(refund, source="shop")) == refund


def test_from_cloud_event_refuses_another_type_or_non_object_data() -> None:
    event = to_cloud_event(OrderCreated(order_id=3))
    with pytest.raises(InvalidEvent, match="Cannot read a 'order.created' event as Refunded"):
        from_cloud_event(Refunded, event)
    with pytest.raises(InvalidEvent, match="not a JSON object"):
        from_cloud_event(OrderCreated, CloudEvent("order.created", "shop", data=[1]))
