"""Local handlers the poison drill's worker subprocess runs (see :mod:`tests.faults.apps`)."""

from django_broadcaster.events import CloudEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry, event_registry

#: The event type whose handler always fails.
POISON_TYPE = "drill.poison"


@event_registry.register(POISON_TYPE)
def always_fails(event: CloudEvent) -> None:
    """Fail on every event, as a handler with a bug does."""
    raise RuntimeError(f"handler bug: cannot handle {event.id}")


#: The handlers of the RabbitMQ drills' consumer (``consume_rabbitmq --registry``).
drill_consumers = EventRegistry()
#: The side effect of each event the drills' consumer handles: an event of this type naming it.
HANDLED_TYPE = "drill.handled"


@drill_consumers.register("drill.event")
def record_handled(event: CloudEvent) -> None:
    """Publish the side effect in the handler's transaction: its rows count the handlings."""
    publisher.publish_event(HANDLED_TYPE, "https://drills.example.com", {"event": event.id})
