"""The soak's load and its lag gauge, each in threads of the test process.

:class:`Load` is a bounded load generator: a fixed number of clients, each posting one order
after another to the web server at a fixed pace, so the load neither stops nor piles up while a
fault slows the server down. One request in ten rolls back on purpose. Every answer is kept:
the ids of committed events (201), of rolled-back events (409), and the count of failed
requests, whose outcome is unknown (the checker trusts the database for those).

:class:`LagGauge` samples the outbox lag once a second straight from PostgreSQL.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import psycopg

from . import ROLLBACK_MARK

CLIENTS = 4
#: Seconds between two requests of one client: with 4 clients about 10 orders, 30 events/s.
PACE_S = 0.4
ROLLBACK_SHARE = 0.1
REQUEST_TIMEOUT_S = 15.0


class Load:
    """Post orders to ``url`` from :data:`CLIENTS` threads until :meth:`stop`."""

    def __init__(self, url: str, seed: int) -> None:
        self.url, self.seed = url, seed
        self.committed: list[str] = []
        self.rolled_back: list[str] = []
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), name=f"load-{n}", daemon=True)
            for n in range(CLIENTS)
        ]

    def start(self) -> Load:
        """Start the clients; return ``self``."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop the clients and wait for their requests in flight."""
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT_S + 5)

    def _client(self, number: int) -> None:
        rng = random.Random(f"{self.seed}-{number}")
        sent = 0
        while not self._stop.wait(PACE_S):
            sent += 1
            rollback = rng.random() < ROLLBACK_SHARE
            mark = ROLLBACK_MARK if rollback else ""
            body = {
                "customer": f"{mark}client{number}-{sent}@soak.example",
                "total": f"{rng.randint(1, 500)}.00",
                "rollback": rollback,
            }
            self._record(*self._post(body))

    def _post(self, body: dict[str, object]) -> tuple[str, list[str]]:
        request = urllib.request.Request(
            self.url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
                return "committed", json.load(answer)["event_ids"]
        except urllib.error.HTTPError as error:
            if error.code == 409:
                return "rolled back", json.load(error)["event_ids"]
            return f"HTTP {error.code}", []
        except (OSError, ValueError):
            return "no answer", []

    def _record(self, outcome: str, ids: list[str]) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            if outcome == "committed":
                self.committed.extend(ids)
            elif outcome == "rolled back":
                self.rolled_back.extend(ids)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


LAG_SQL = (
    "select coalesce(extract(epoch from now() - min(created_at)), 0) "
    "from outbox_events where status = 'pending'"
)


def outbox_lag(dsn: str) -> float:
    """Return the age in seconds of the oldest event not yet delivered everywhere (0 if none)."""
    with psycopg.connect(dsn, connect_timeout=3) as connection:
        row = connection.execute(LAG_SQL).fetchone()
    return float(row[0]) if row else 0.0


class LagGauge:
    """Sample :func:`outbox_lag` every second in a thread, except while the database is away."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.samples: list[tuple[float, float]] = []  # (monotonic time, lag in seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-gauge", daemon=True)

    @property
    def worst(self) -> float:
        """Return the largest lag sampled."""
        return max((lag for _, lag in self.samples), default=0.0)

    def recovery_after(self, moment: float, limit_s: float) -> float | None:
        """Return the seconds from ``moment`` to the first sample with a lag under ``limit_s``."""
        return next(
            (at - moment for at, lag in self.samples if at >= moment and lag < limit_s), None
        )

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                lag = outbox_lag(self.dsn)
            except psycopg.Error:
                continue
            self.samples.append((time.monotonic(), lag))

    def __enter__(self) -> LagGauge:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
