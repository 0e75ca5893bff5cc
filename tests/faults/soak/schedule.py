"""The soak's faults: a schedule drawn from a seed, and the injector that carries it out.

:func:`plan` draws the whole schedule before the soak starts, from ``random.Random(seed)`` alone,
so a seed names one schedule and replays it. :class:`Injector` carries the faults out one after
another, each undone (a process restarted, a service started again, the network healed) before
the next one begins.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from harness.polling import poll

from .rig import Rig, Supervised

#: Each kind of fault and its weight in the draw.
KINDS = {
    "SIGKILL worker": 3,
    "SIGTERM worker": 2,
    "SIGKILL consumer": 2,
    "SIGTERM consumer": 1,
    "SIGSTOP/SIGCONT": 2,
    "Redis restart": 1,
    "Kafka broker restart": 1,
    "PostgreSQL restart": 1,
    "latency": 2,
    "network cut": 2,
    "connection reset": 2,
}
#: Seconds a fault lasts (a process stays dead or frozen, a service stopped, the network bad).
HOLD_S = (1.0, 6.0)
#: Seconds between the end of a fault and the start of the next one.
GAP_S = (2.0, 6.0)
#: How long the Kafka consumer and the reader may take to catch up before the broker is stopped.
DRAIN_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Fault:
    """One fault of the schedule: its kind, what it hits, how long it lasts, the pause before it."""

    kind: str
    target: str
    hold_s: float
    gap_s: float

    def __str__(self) -> str:
        return f"{self.kind} on {self.target} for {self.hold_s:g} s (after {self.gap_s:g} s)"


def plan(seed: int, duration_s: float, workers: list[str], consumers: list[str]) -> list[Fault]:
    """Return the faults that seed ``seed`` draws for a soak of ``duration_s`` seconds.

    The schedule assumes each fault takes its hold and gap only; the injector stops at the
    soak's end, so the tail of the schedule may go unused.
    """
    rng = random.Random(seed)
    targets = {
        "SIGKILL worker": workers,
        "SIGTERM worker": workers,
        "SIGKILL consumer": consumers,
        "SIGTERM consumer": consumers,
        "SIGSTOP/SIGCONT": workers + consumers,
        "Redis restart": ["redis"],
        "Kafka broker restart": ["kafka"],
        "PostgreSQL restart": ["postgres"],
        "latency": ["redis proxy", "kafka proxy"],
        "network cut": ["redis proxy", "kafka proxy"],
        "connection reset": ["redis proxy", "kafka proxy"],
    }
    faults: list[Fault] = []
    elapsed = 0.0
    while elapsed < duration_s:
        kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        fault = Fault(
            kind,
            rng.choice(targets[kind]),
            round(rng.uniform(*HOLD_S), 1),
            round(rng.uniform(*GAP_S), 1),
        )
        faults.append(fault)
        elapsed += fault.gap_s + fault.hold_s
    return faults


class Injector:
    """Carry out faults on a :class:`Rig`; count them by kind and keep what went wrong.

    ``kafka_drained`` returns whether the Kafka consumer has handled everything the reader
    read: the broker keeps messages in memory only, so before it is stopped the workers are
    frozen and both must have read the whole topic.
    """

    def __init__(self, rig: Rig, seed: int, kafka_drained: Callable[[set[str]], bool]) -> None:
        self.rig, self.kafka_drained = rig, kafka_drained
        self.rng = random.Random(f"{seed}-latency")
        self.done: Counter[str] = Counter()
        self.problems: list[str] = []
        self.log: list[str] = []
        self.ended: list[tuple[Fault, float]] = []  # each fault and when it was undone

    def run(self, faults: list[Fault], duration_s: float) -> float:
        """Carry out ``faults`` for ``duration_s`` seconds; return when the last one ended."""
        started = time.monotonic()
        last_end = started
        for fault in faults:
            time.sleep(fault.gap_s)
            if time.monotonic() - started >= duration_s:
                break
            self.log.append(f"{time.monotonic() - started:7.1f} s  {fault}")
            self.inject(fault)
            self.done[fault.kind] += 1
            last_end = time.monotonic()
            self.ended.append((fault, last_end))
        return last_end

    def inject(self, fault: Fault) -> None:
        """Carry out one fault and undo it."""
        rig, hold = self.rig, fault.hold_s
        if fault.kind.startswith(("SIGKILL", "SIGTERM")):
            self._end_and_restart(self._process(fault.target), fault.kind, hold)
        elif fault.kind == "SIGSTOP/SIGCONT":
            process = self._process(fault.target)
            process.signal(signal.SIGSTOP)
            time.sleep(hold)
            process.signal(signal.SIGCONT)
        elif fault.kind == "Redis restart":
            rig.redis.stop()
            time.sleep(hold)
            rig.redis.start()
        elif fault.kind == "Kafka broker restart":
            self._restart_kafka(hold)
        elif fault.kind == "PostgreSQL restart":
            rig.postgres.stop()
            time.sleep(hold)
            rig.postgres.start()
        else:
            self._network(fault)

    def _process(self, name: str) -> Supervised:
        return {s.name: s for s in [*self.rig.workers, *self.rig.consumers.values()]}[name]

    def _end_and_restart(self, process: Supervised, kind: str, hold: float) -> None:
        signum = signal.SIGKILL if kind.startswith("SIGKILL") else signal.SIGTERM
        status = process.end(signum)
        if signum == signal.SIGTERM and status != 0:
            self.problems.append(f"{process.name} exited {status} on SIGTERM, not 0")
        time.sleep(hold)
        self.rig.restart(process)

    def _restart_kafka(self, hold: float) -> None:
        rig = self.rig
        for worker in rig.workers:
            worker.signal(signal.SIGSTOP)
        try:
            reader = rig.kafka_readers[-1]
            reader.wait_idle(2.0, timeout=DRAIN_TIMEOUT_S)
            read = set(reader.ids)
            poll(lambda: self.kafka_drained(read), DRAIN_TIMEOUT_S, "consume_kafka to catch up")
            reader.stop()  # else it would read the restarted broker's topic as well
            # The restarted broker starts every partition at offset 0 again and has no committed
            # offsets: a consumer that kept its positions would skip the new log's first
            # messages. A real Kafka keeps both; here consume_kafka starts over with the broker.
            consumer = rig.consumers["consume_kafka"]
            if (status := consumer.end(signal.SIGTERM)) != 0:
                self.problems.append(f"consume_kafka exited {status} on SIGTERM, not 0")
            rig.tansu.stop()
            time.sleep(hold)
            rig.tansu.start()
            rig.new_kafka_reader()
            rig.restart(consumer)
        finally:
            for worker in rig.workers:
                worker.signal(signal.SIGCONT)

    def _network(self, fault: Fault) -> None:
        proxy = self.rig.redis_proxy if fault.target == "redis proxy" else self.rig.kafka_proxy
        if fault.kind == "latency":
            proxy.latency_s = round(self.rng.uniform(0.05, 0.5), 2)
            time.sleep(fault.hold_s)
            proxy.latency_s = 0.0
        elif fault.kind == "network cut":
            proxy.partition()
            time.sleep(fault.hold_s)
            proxy.heal()
        else:
            proxy.reset()
            time.sleep(fault.hold_s)
