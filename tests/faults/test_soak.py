"""Drill 9: the randomized fault soak (issue 24).

The example shop, served by gunicorn with several processes, takes a steady stream of orders
(each publishing three events under the order's key, one in ten rolled back on purpose) while
two outbox workers deliver to Redis and Kafka, a local handler runs, and ``consume_redis`` and
``consume_kafka`` handle every event through their inboxes. Meanwhile a schedule drawn from
``SOAK_SEED`` kills, stops and freezes processes, restarts Redis, the Kafka broker and
PostgreSQL, and slows, cuts and resets the network between the workers and the brokers.

At the end every committed event must have reached every destination, in publish order per key,
with no more duplicates than the bound of ``docs/reliability.md``; no event of a rolled-back
request may be anywhere; each consumer's handler must have run exactly once per event; and the
lag must be back under 10 s within 30 s of the last fault.

``SOAK_MINUTES`` (default 3, what CI runs) sets the length; ``SOAK_SEED`` (default 24) the
schedule. Every failure message names both, to replay the run.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import psycopg
import pytest

from harness.polling import poll
from tests.ci import missing

from .drill import report
from .observe import stream_ids
from .soak import ORDER_STEPS
from .soak.check import (
    Destination,
    Event,
    committed_events,
    dsn,
    handled,
    marked_rolled_back,
    notified,
    order_events,
)
from .soak.load import LagGauge, Load, outbox_lag
from .soak.rig import CONSUMER_DATABASES, STREAM, WORKERS, Rig
from .soak.schedule import Fault, Injector, plan

# ``postgres`` keeps it to the PostgreSQL run of scripts/test: it brings its own cluster, and
# running it again in the SQLite run would only cost CI three more minutes.
pytestmark = [pytest.mark.faults, pytest.mark.soak, pytest.mark.postgres]

SEED = int(os.environ.get("SOAK_SEED", "24"))
MINUTES = float(os.environ.get("SOAK_MINUTES", "3"))
REPLAY = f"replay with SOAK_SEED={SEED} SOAK_MINUTES={MINUTES:g} pytest -m soak"
#: The lag must be back under this many seconds ...
LAG_LIMIT_S = 10.0
#: ... within this many seconds of the end of the last fault.
RECOVERY_LIMIT_S = 30.0
#: How long the delivery of the last events may take once the load has stopped.
SETTLE_TIMEOUT_S = 180.0


def fail(message: str) -> None:
    """Fail the soak with ``message`` and the seed that replays it."""
    pytest.fail(f"soak seed {SEED} ({REPLAY}): {message}", pytrace=False)


@pytest.mark.timeout(int(MINUTES * 60) + 600)
def test_randomized_fault_soak(tmp_path: Path) -> None:
    print(f"\nsoak: SOAK_SEED={SEED}, SOAK_MINUTES={MINUTES:g}, logs in {tmp_path}")
    if importlib.util.find_spec("gunicorn") is None:
        missing("gunicorn is not installed (pip install -e '.[test]')")
    try:
        soak(tmp_path)
    except Exception as exc:  # a process that did not start, a drain that timed out...
        fail(f"{type(exc).__name__}: {exc}")


def soak(tmp_path: Path) -> None:
    """Run the soak in ``tmp_path``; fail it with what the checker finds."""
    with Rig(tmp_path) as rig:
        shop = dsn(rig.postgres.port, "shop")
        inbox = {name: dsn(rig.postgres.port, db) for name, db in CONSUMER_DATABASES.items()}
        duration_s = MINUTES * 60
        faults = plan(SEED, duration_s, [w.name for w in rig.workers], list(rig.consumers))
        injector = Injector(rig, SEED, lambda read: read <= set(handled(inbox["consume_kafka"])))
        url = f"http://127.0.0.1:{rig.web_port}/soak/orders/"
        with LagGauge(shop) as gauge, Load(url, SEED) as load:
            try:
                last_fault_end = injector.run(faults, duration_s)
            finally:
                print("\n".join(["soak: faults injected", *injector.log]))
            recovery_s = wait_for_recovery(shop)
            late_lag = max((lag for at, lag in gauge.samples if at >= last_fault_end), default=0.0)
            recoveries = [
                (gauge.recovery_after(end, LAG_LIMIT_S), fault) for fault, end in injector.ended
            ]
            if recoveries:  # the gauge may stop before its sample of the last one's recovery
                recoveries[-1] = (recovery_s, recoveries[-1][1])
        unsettled = settle(rig, shop, inbox)
        events = committed_events(shop)
        wire = [
            Destination("Redis", stream_ids(rig.redis.url, STREAM), events),
            Destination("Kafka", rig.kafka_ids(), events),
        ]
        duplicates = {destination.name: destination.duplicates for destination in wire}
        check(wire, events, load, injector, shop, inbox, unsettled)
    report_figures(events, load, injector, duplicates, gauge, recovery_s, late_lag, recoveries)


def wait_for_recovery(shop: str) -> float:
    """Return the seconds until the outbox lag is under the limit, or fail after 30 s."""
    try:
        return poll(
            lambda: lag_below(shop, LAG_LIMIT_S),
            RECOVERY_LIMIT_S,
            f"the lag to be under {LAG_LIMIT_S:g} s",
            every=0.5,
        )
    except TimeoutError as exc:
        fail(f"no recovery after the last fault: {exc}")
        raise


def lag_below(shop: str, limit_s: float) -> bool:
    """Return whether the database answers and its outbox lag is under ``limit_s``."""
    lag = lag_or_none(shop)
    return lag is not None and lag < limit_s


def lag_or_none(shop: str) -> float | None:
    """Return the outbox lag, or ``None`` while the database does not answer."""
    try:
        return outbox_lag(shop)
    except psycopg.Error:  # refused, or "the database system is starting up"
        return None


def settle(rig: Rig, shop: str, inbox: dict[str, str]) -> str:
    """Wait until everything committed is published, read back and handled by each consumer.

    Return what never came, after :data:`SETTLE_TIMEOUT_S` in all, or ``""``: the checker then
    says which events are missing where.
    """
    started = time.monotonic()

    def remaining() -> float:
        return max(1.0, SETTLE_TIMEOUT_S - (time.monotonic() - started))

    try:
        poll(lambda: lag_or_none(shop) == 0.0, remaining(), "every event published", every=0.5)
        ids = {event.id for event in committed_events(shop)}
        poll(lambda: ids <= set(rig.stream_reader.ids), remaining(), "the stream read", every=0.5)
        poll(lambda: ids <= set(rig.kafka_ids()), remaining(), "the topic read", every=0.5)
        for name, conninfo in inbox.items():
            poll(lambda c=conninfo: ids <= set(handled(c)), remaining(), f"{name}", every=1.0)
    except TimeoutError as exc:
        return f"not everything arrived after the load stopped: {exc}"
    return ""


def check(
    wire: list[Destination],
    events: list[Event],
    load: Load,
    injector: Injector,
    shop: str,
    inbox: dict[str, str],
    unsettled: str,
) -> None:
    """Fail the soak with every problem found, if any."""
    problems = [*([unsettled] if unsettled else []), *injector.problems]
    unfinished = [e for e in events if e.status != "published"]
    if unfinished:
        problems.append(f"{len(unfinished)} events not published: {unfinished[:3]}")
    committed = {event.id for event in events}
    if set(load.committed) - committed:
        problems.append(f"{len(set(load.committed) - committed)} events answered 201 are gone")
    if set(load.rolled_back) & committed or marked_rolled_back(shop):
        problems.append("events of rolled-back requests are in the outbox")
    # A fault can make each worker send its batch in hand again: one batch per worker per fault.
    bound = int(os.environ.get("SOAK_BATCH_SIZE", "50")) * WORKERS * sum(injector.done.values())
    for destination in wire:
        problems += destination.problems(bound)
        if set(load.rolled_back) & set(destination.counts):
            problems.append(f"{destination.name} got events of rolled-back requests")
    if wire[1].missing:  # was it the broker or the drill's reader? the consumer read it too
        consumed = set(handled(inbox["consume_kafka"])).intersection(wire[1].missing)
        problems.append(f"of the events the reader missed, consume_kafka handled {len(consumed)}")
    created = [event for event in events if event.type == ORDER_STEPS[0]]
    problems += Destination("local handler", notified(shop), created).problems(None)
    for name, conninfo in inbox.items():
        problems += Destination(name, handled(conninfo), order_events(events)).problems(None)
    if problems:
        fail("\n".join(problems))


def report_figures(
    events: list[Event],
    load: Load,
    injector: Injector,
    duplicates: dict[str, int],
    gauge: LagGauge,
    recovery_s: float,
    late_lag: float,
    recoveries: list[tuple[float | None, Fault]],
) -> None:
    """Report the soak's figures (the end-of-run summary prints them)."""
    slowest, slowest_fault = max(
        ((seconds, fault) for seconds, fault in recoveries if seconds is not None),
        default=(0.0, None),
        key=lambda pair: pair[0],
    )
    report(
        "soak",
        f"seed {SEED}, {MINUTES:g} min: {len(events)} events committed "
        f"({load.outcomes['committed']} orders answered 201, {load.outcomes['rolled back']} "
        f"rolled back on purpose, {sum(load.outcomes.values())} requests in all: "
        f"{dict(load.outcomes)}); {sum(injector.done.values())} faults {dict(injector.done)}; "
        f"duplicates {duplicates}; worst lag {gauge.worst:.1f} s; after the last fault the lag "
        f"was under {LAG_LIMIT_S:g} s in {recovery_s:.1f} s (worst {late_lag:.1f} s); the slowest "
        f"recovery to under {LAG_LIMIT_S:g} s took {slowest:.1f} s, after {slowest_fault}",
    )
