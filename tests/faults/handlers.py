"""Local handlers the poison drill's worker subprocess runs (see :mod:`tests.faults.apps`)."""

from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import event_registry

#: The event type whose handler always fails.
POISON_TYPE = "drill.poison"


@event_registry.register(POISON_TYPE)
def always_fails(event: CloudEvent) -> None:
    """Fail on every event, as a handler with a bug does."""
    raise RuntimeError(f"handler bug: cannot handle {event.id}")
