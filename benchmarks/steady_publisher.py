"""One publishing process of the latency-under-load measurement (``python -m
benchmarks.steady_publisher RATE SECONDS PER_TRANSACTION GO_FILE OUT_FILE``).

It prints ``ready`` once Django is set up, waits until ``GO_FILE`` exists (so that every
publisher starts together), then commits transactions of ``PER_TRANSACTION`` events on a fixed
schedule, ``RATE`` events a second for ``SECONDS``, and writes each event's commit time (ms,
this machine's clock) by id to ``OUT_FILE`` as JSON. A publisher that falls behind its schedule
catches up, as an open stream of requests would.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.polling import poll

READY_LINE = "ready"
GO_TIMEOUT_S = 300.0


def publish_on_schedule(rate: float, seconds: float, per_transaction: int) -> dict[str, float]:
    """Publish ``rate`` events/s for ``seconds`` in transactions of ``per_transaction``; return
    each event's commit time (ms) by id.

    Each transaction copies a row written by ``publish_event`` on the server (as
    :func:`benchmarks.database.fill_outbox` does), stamped with the transaction's time: in
    Python, ``publish_event`` costs about a millisecond of CPU per event, and publishers paying
    it would take the cores the worker's capacity was measured with.
    """
    from django.db import connection, transaction

    insert = _copying_insert(_template_id())
    committed: dict[str, float] = {}
    interval = per_transaction / rate
    next_at = time.perf_counter()
    for _ in range(max(1, round(seconds * rate / per_transaction))):
        time.sleep(max(0.0, next_at - time.perf_counter()))  # the schedule, not a wait for state
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(insert, [per_transaction])
            ids = [str(row[0]) for row in cursor.fetchall()]
        at = time.time() * 1000
        committed.update((pk, at) for pk in ids)
        next_at += interval
    return committed


def _template_id() -> Any:
    """Write one workload event, parked as ``failed`` so that no worker takes it; return its id."""
    from django.db import transaction

    from django_broadcaster.models import OutboxEvent
    from django_broadcaster.publishers import publisher

    from .workload import EVENT_TYPE, SOURCE, payload

    with transaction.atomic():
        template = publisher.publish_event(EVENT_TYPE, SOURCE, payload())
        OutboxEvent.objects.filter(pk=template.pk).update(status="failed")
    return template.pk


def _copying_insert(template_id: Any) -> str:
    """Return the INSERT that adds ``%s`` pending copies of the template, due now."""
    from django_broadcaster.models import OutboxEvent

    from .database import OUTBOX_TABLE, time_ordered_id

    overrides = {
        "id": time_ordered_id("clock_timestamp()"),
        "created_at": "now()",
        "scheduled_at": "now()",
        "time": "now()",
        "status": "'pending'",
    }
    columns = [field.column for field in OutboxEvent._meta.concrete_fields]
    select = ", ".join(overrides.get(column, f"t.{column}") for column in columns)
    return (
        f"INSERT INTO {OUTBOX_TABLE} ({', '.join(columns)}) SELECT {select} "
        f"FROM {OUTBOX_TABLE} t, generate_series(1, %s) WHERE t.id = '{template_id}' RETURNING id"
    )


def main(argv: Sequence[str]) -> int:
    """Run one publisher (see the module's docstring); return the exit status."""
    rate, seconds, per_transaction, go_file, out_file = argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    print(READY_LINE, flush=True)
    poll(Path(go_file).exists, GO_TIMEOUT_S, "the signal to start publishing", every=0.001)
    committed = publish_on_schedule(float(rate), float(seconds), int(per_transaction))
    Path(out_file).write_text(json.dumps(committed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
