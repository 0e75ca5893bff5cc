"""Typed events for the AsyncAPI and validation tests: a dataclass and a pydantic model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class OrderPlaced:
    event_type: ClassVar[str] = "order.placed"
    source: ClassVar[str] = "/shop/orders"
    order_id: int
    sku: str


class Line(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class InvoiceSent(BaseModel):
    event_type: ClassVar[str] = "invoice.sent"
    source: ClassVar[str] = "/billing"
    model_config = {"json_schema_extra": {"examples": [{"number": "F-1", "lines": []}]}}
    number: str = Field(pattern=r"^F-\d+$")
    lines: list[Line]


#: A registered schema (SCHEMAS) for plain events that name it as their dataschema.
REFUND_URI = "https://shop.example/schemas/refund.json"
REFUND = {
    "type": "object",
    "properties": {"amount": {"type": "number", "exclusiveMinimum": 0}},
    "required": ["amount"],
}
