"""Drain PostgreSQL to a local HTTP receiver with the webhook backend, beside a raw urllib3 loop.

The receiver is :mod:`benchmarks.http_sink`, a minimal asyncio server in its own process (not
Django: the figure is the sender's). The worker uses the backend's defaults (4 requests in
flight, keep-alive) in ``batched`` mode (100 events a request) and in ``binary`` mode (one
request per event). The raw loop (:mod:`benchmarks.ceiling`'s claim and mark) posts the same
shapes with the same client, pool and concurrency, signed the same way with standardwebhooks.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone

import urllib3
from standardwebhooks import Webhook

from harness.process import Process

from . import ceiling
from .database import connect, count_rows, database_name, empty_outbox, fill_outbox
from .drains import WORKER_OPTIONS, timed_drain
from .report import Figure, Goal
from .rounds import best_of
from .scale import Scale
from .workers import REPO, current_worker

SECRET = "whsec_YmVuY2htYXJrLW9ubHktd2ViaG9vay1zZWNyZXQtMzI="
IN_FLIGHT = 4
PER_REQUEST = 100  # the backend's batch_max_events


@contextmanager
def sink() -> Iterator[str]:
    """Run the receiver; yield its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "benchmarks.http_sink", str(port)]
    with Process(command, env={}, cwd=REPO, ready_line="listening", name="http-sink") as process:
        process.wait_ready()
        yield f"http://127.0.0.1:{port}/hook"


def drain_rate(url: str, count: int, mode: str) -> float:
    """Return events/s for one worker draining ``count`` events to ``url`` in ``mode``."""
    empty_outbox()
    options = {"url": url, "secrets": [SECRET], "mode": mode}
    backends = {
        "hook": {"BACKEND": "django_broadcaster.backends.WebhookBackend", "OPTIONS": options}
    }
    worker = current_worker(backends, *WORKER_OPTIONS)
    with connect(database_name()) as poll:
        drain = timed_drain([worker], lambda: fill_outbox(count), poll, count)
        published = count_rows(poll, "published")
    if published != count:
        raise RuntimeError(f"{published} of {count} events published to the webhook")
    return drain.rate


def ceiling_rate(url: str, count: int, mode: str) -> float:
    """Return events/s for the raw loop posting ``count`` events to ``url`` in ``mode``."""
    empty_outbox()
    fill_outbox(count)
    pool = urllib3.connection_from_url(url, maxsize=IN_FLIGHT, block=True)
    with ThreadPoolExecutor(IN_FLIGHT) as executor, connect(database_name()) as connection:
        seconds = ceiling.drain(connection, _sender(pool, executor, mode))
    pool.close()
    return count / seconds


def _sender(
    pool: urllib3.HTTPConnectionPool, executor: ThreadPoolExecutor, mode: str
) -> Callable[[Sequence[ceiling.Row]], None]:
    hook = Webhook(SECRET)

    def post(message_id: str, body: bytes, content_type: str) -> None:
        now = datetime.now(timezone.utc)
        headers = {
            "content-type": content_type,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": hook.sign(message_id, now, body),
        }
        response = pool.urlopen("POST", "/hook", body=body, headers=headers, redirect=False)
        if response.status >= 300:
            raise RuntimeError(f"the receiver answered {response.status}")

    def binary(row: ceiling.Row) -> None:
        post(str(row[0]), json.dumps(row[4]).encode(), "application/json")

    def batched(rows: Sequence[ceiling.Row]) -> None:
        body = ("[" + ",".join(ceiling.cloud_event_json(row) for row in rows) + "]").encode()
        post(str(rows[0][0]), body, "application/cloudevents-batch+json")

    def deliver(rows: Sequence[ceiling.Row]) -> None:
        if mode == "batched":
            chunks = [rows[i : i + PER_REQUEST] for i in range(0, len(rows), PER_REQUEST)]
            list(executor.map(batched, chunks))
        else:
            list(executor.map(binary, rows))

    return deliver


def measure(scale: Scale) -> list[Figure]:
    """Return the webhook drain rates in both modes and their ratios to the raw loop."""
    count = scale.drain_events
    with sink() as url:
        rates = best_of(
            scale.rounds,
            {
                "batched": lambda: drain_rate(url, count, "batched"),
                "batched raw": lambda: ceiling_rate(url, count, "batched"),
                "binary": lambda: drain_rate(url, count, "binary"),
                "binary raw": lambda: ceiling_rate(url, count, "binary"),
            },
            higher_is_better=True,
        )
    batched, binary = rates["batched"], rates["binary"]
    return [
        Figure("Webhook drain, batched", batched, "ev/s", goal=Goal(">=", 5_000, "measured")),
        Figure("Webhook drain, batched vs raw loop", batched, "ev/s", rates["batched raw"], "raw"),
        Figure("Webhook drain, per event", binary, "ev/s", goal=Goal(">=", 1_500, "measured")),
        Figure("Webhook drain, per event vs raw loop", binary, "ev/s", rates["binary raw"], "raw"),
    ]
