"""What a consumer subprocess does with each event (see :mod:`tests.consumer_app.apps`).

The side effect is an outbox row of type :data:`HANDLED_TYPE` naming the event, written in the
handler's transaction: counting those rows counts how often each event was really handled.
``CONSUMER_TEST_DELAY_S`` slows each event down, so that a test can kill the process mid-way.
"""

import os
import time

from django_broadcaster.events import CloudEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import consumer_registry

from . import HANDLED_TYPE, ORDER_TYPE, POISON_TYPE


@consumer_registry.register(ORDER_TYPE)
def record_order(event: CloudEvent) -> None:
    """Write the side effect, after the configured delay."""
    time.sleep(float(os.environ.get("CONSUMER_TEST_DELAY_S", "0")))
    publisher.publish_event(HANDLED_TYPE, "tests/consumer", {"event": event.id})


@consumer_registry.register(POISON_TYPE)
def always_fail(event: CloudEvent) -> None:
    """Fail every time, like a handler with a bug."""
    raise RuntimeError(f"cannot handle {event.id}")
