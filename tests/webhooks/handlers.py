"""The consumer handlers the receiving view runs in the webhook tests.

Each call appends the event's id to the file ``WEBHOOK_HANDLED_FILE`` names, so a test counts
the calls (a rolled-back call is counted too: "handled once" means called once). An event whose
data has ``"fail": true`` makes its handler raise; ``"sleep_s"`` makes it take that long.
"""

import os
import time

from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import consumer_registry

from . import HANDLED_TYPE


@consumer_registry.register(HANDLED_TYPE)
@consumer_registry.register("drill.event")  # what the drills' steady publisher sends
def note_order(event: CloudEvent) -> None:
    """Append the event's id to the file of handled events; fail or dawdle if asked."""
    data = event.data if isinstance(event.data, dict) else {}
    time.sleep(float(data.get("sleep_s", 0)))
    if data.get("fail"):
        raise RuntimeError(f"handler refuses {event.id}")
    with open(os.environ["WEBHOOK_HANDLED_FILE"], "a", encoding="utf-8") as handled:
        handled.write(f"{event.id}\n")
