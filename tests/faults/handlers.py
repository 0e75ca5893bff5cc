"""Local handlers the poison drill's worker subprocess runs (see :mod:`tests.faults.apps`)."""

from dataclasses import dataclass
from typing import ClassVar

from django_broadcaster.commands import Command
from django_broadcaster.events import CloudEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry, event_registry

#: The event type whose handler always fails.
POISON_TYPE = "drill.poison"


@event_registry.register(POISON_TYPE)
def always_fails(event: CloudEvent) -> None:
    """Fail on every event, as a handler with a bug does."""
    raise RuntimeError(f"handler bug: cannot handle {event.id}")


#: The event type whose handler returns follow-ups: an event and a command.
RETURNS_TYPE = "drill.order_paid"


@dataclass(frozen=True)
class Restock(Command):
    """A command returned by a handler; its own handler returns an event in turn."""

    event_type: ClassVar[str] = "drill.restock"
    source: ClassVar[str] = "drill"
    sku: str


@event_registry.register(RETURNS_TYPE)
def order_paid(event: CloudEvent) -> list[object]:
    """Return a receipt and a command, published with this handler's success."""
    receipt = CloudEvent("drill.receipt", "drill", {"order": event.data["order"]})
    return [receipt, Restock(sku=event.data["sku"])]


@event_registry.register(Restock)
def restock(command: Restock) -> CloudEvent:
    """Return the event saying the command was done."""
    return CloudEvent("drill.restocked", "drill", {"sku": command.sku})


#: The handlers of the RabbitMQ drills' consumer (``consume_rabbitmq --registry``).
drill_consumers = EventRegistry()
#: The side effect of each event the drills' consumer handles: an event of this type naming it.
HANDLED_TYPE = "drill.handled"


@drill_consumers.register("drill.event")
def record_handled(event: CloudEvent) -> None:
    """Publish the side effect in the handler's transaction: its rows count the handlings."""
    publisher.publish_event(HANDLED_TYPE, "https://drills.example.com", {"event": event.id})
