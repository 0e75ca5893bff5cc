"""Drills on RabbitMQ: the broker stopped, or frozen, and the worker SIGKILLed mid-batch.

Both run the real ``outbox_worker`` and ``consume_rabbitmq`` as subprocesses on a node of the
drill's own (:mod:`.rabbitmq_node`), whose queue takes every event (``#``). The consumer's
handler publishes a ``drill.handled`` event naming each event it handles, in its transaction:
counting those counts the handlings. Each drill runs once per module (a module-scoped fixture);
the tests check one guarantee each on what it observed.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from django_broadcaster.backends import RabbitMQBackend
from django_broadcaster.consumers.inbox import InboxEntry
from django_broadcaster.exceptions import BackendUnavailable
from django_broadcaster.models import OutboxEvent, Status
from harness.process import Process
from tests.amqp import Queue
from tests.factories import published_event
from tests.workers import start_command

from .drill import DRILL_TIMEOUT_S, Scale, SteadyPublisher, poll, publish, report, start_worker
from .handlers import HANDLED_TYPE
from .rabbitmq_node import RabbitMQNode

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(DRILL_TIMEOUT_S),
    pytest.mark.postgres,
    pytest.mark.rabbitmq,
    pytest.mark.django_db(transaction=True),
]

EVENT_TYPE = "drill.event"
BATCH_SIZE = 100
WARM_UP_S = 3.0
AFTERWARDS_S = 3.0
#: SEND_DEADLINE of the frozen drill: a batch waits this long for confirms that never come.
FROZEN_DEADLINE_S = 2
#: What pika itself logs about a failed connection, which the backend and consumer demote.
PIKA_NOISE = re.compile(r"Socket failed to connect|connection workflow failed|stack bring-up")


@dataclass
class Observed:
    """What a drill saw: the events, the outbox, the handlings, and the processes' output."""

    ids: list[str]
    statuses: dict[str, int]
    charged: int
    handled: Counter[str]
    copies_in_queue: int
    worker: str
    consumer: str

    @property
    def lost(self) -> set[str]:
        return set(self.ids) - set(self.handled)


@pytest.fixture(scope="module")
def node(django_db_setup: None, django_db_blocker: Any) -> Iterator[RabbitMQNode]:
    """Start the drills' node; empty the outbox and the inbox afterwards."""
    with django_db_blocker.unblock(), RabbitMQNode() as started:
        try:
            yield started
        finally:
            OutboxEvent.objects.all().delete()
            InboxEntry.objects.all().delete()


def rabbit_backend(url: str) -> dict[str, Any]:
    return {"BACKEND": "django_broadcaster.backends.RabbitMQBackend", "OPTIONS": {"url": url}}


def drill_queue(node: RabbitMQNode, name: str) -> Queue:
    queue = Queue(node.url, name)
    queue.bind("#")
    return queue


def start_consumer(node: RabbitMQNode, queue: Queue, log_dir: Path, *args: str) -> Process:
    return start_command(
        "consume_rabbitmq",
        *("--url", node.url, "--queue", queue.name, "--no-declare"),
        *("--registry", "tests.faults.handlers.drill_consumers", "-v", "2", *args),
        name=f"consume-{queue.name}",
        log=log_dir / f"consume-{queue.name}.log",
    )


def observe(ids: list[str], queue_copies: int, worker: Process, consumer: Process) -> Observed:
    events = OutboxEvent.objects.filter(event_type=EVENT_TYPE)
    statuses = Counter(events.values_list("status", flat=True))
    handled_rows = OutboxEvent.objects.filter(event_type=HANDLED_TYPE)
    return Observed(
        ids=ids,
        statuses=dict(statuses),
        charged=events.exclude(retry_count=0).count(),
        handled=Counter(data["event"] for data in handled_rows.values_list("data", flat=True)),
        copies_in_queue=queue_copies,
        worker=worker.output(),
        consumer=consumer.output(),
    )


def drill_published(count: int) -> bool:
    events = OutboxEvent.objects.filter(event_type=EVENT_TYPE, status=Status.PUBLISHED)
    return events.count() == count


def handled_count() -> int:
    return OutboxEvent.objects.filter(event_type=HANDLED_TYPE).count()


# --- RabbitMQ stopped, or frozen, while events keep coming ----------------------------------


@dataclass
class Interrupted:
    """A drill's observations, and how long after the feed stopped it caught up."""

    observed: Observed
    published_after_s: float
    handled_after_s: float

    def summary(self, what: str) -> str:
        observed = self.observed
        return (
            f"{what}; {len(observed.ids)} events at 100/s; published "
            f"{self.published_after_s:.1f} s and handled {self.handled_after_s:.1f} s after the "
            f"feed stopped; {observed.charged} retries spent; {consumer_stats(observed.consumer)}"
        )


def interrupted(
    node: RabbitMQNode, log_dir: Path, settings: dict[str, Any], interrupt: Callable[[], None]
) -> Interrupted:
    """Run the worker and the consumer under a feed of 100 events/s, ``interrupt`` the node
    once events flow, and return what they did once every event was handled."""
    queue = drill_queue(node, log_dir.name)
    settings = {"BATCH_SIZE": BATCH_SIZE, **settings}
    worker = start_worker(log_dir, "worker", backends={"rabbit": rabbit_backend(node.url)},
                          settings=settings)  # fmt: skip
    consumer = start_consumer(node, queue, log_dir)
    with worker, consumer, SteadyPublisher() as feed:
        poll(lambda: handled_count() > 0, 60, "first events handled")
        time.sleep(WARM_UP_S)
        interrupt()
        time.sleep(AFTERWARDS_S)
        feed.stop()
        ids = feed.ids()
        caught_up = poll(lambda: drill_published(len(ids)), 120, "every event published")
        handled = poll(lambda: handled_count() >= len(ids), 120, "every event handled")
        assert worker.stop() == 0, worker.tail()
        assert consumer.stop() == 0, consumer.tail()
    return Interrupted(observe(ids, -1, worker, consumer), caught_up, handled)


@pytest.fixture(scope="module")
def outage(node: RabbitMQNode, scale: Scale, tmp_path_factory: pytest.TempPathFactory) -> Observed:
    """Stop the node for ``scale.outage_s`` while events keep coming, then start it."""

    def stop_and_start() -> None:
        node.stop()
        time.sleep(scale.outage_s)  # the outage itself: there is nothing to wait for
        node.start()

    drill = interrupted(node, tmp_path_factory.mktemp("outage"), {}, stop_and_start)
    report("rabbitmq stopped", drill.summary(f"{scale.outage_s:.0f} s"))
    return drill.observed


@pytest.fixture(scope="module")
def frozen(node: RabbitMQNode, scale: Scale, tmp_path_factory: pytest.TempPathFactory) -> Observed:
    """Freeze the node for half ``scale.stall_s`` while events keep coming, then thaw it.

    A frozen node takes connections and writes but answers nothing: each batch waits for its
    confirms until ``SEND_DEADLINE``, and each new connection for the broker's greeting.
    """

    def freeze_and_thaw() -> None:
        node.freeze()
        try:
            time.sleep(scale.stall_s / 2)  # the freeze itself: there is nothing to wait for
        finally:
            node.thaw()

    settings = {"SEND_DEADLINE": FROZEN_DEADLINE_S}
    drill = interrupted(node, tmp_path_factory.mktemp("frozen"), settings, freeze_and_thaw)
    report("rabbitmq frozen", drill.summary(f"{scale.stall_s / 2:.1f} s"))
    return drill.observed


def consumer_stats(output: str) -> str:
    found = re.findall(r"Processed \d+, duplicates \d+, ignored \d+, dead letters \d+", output)
    return found[-1] if found else "no totals"


def assert_each_handled_once(observed: Observed) -> None:
    assert observed.lost == set()
    assert observed.statuses == {Status.PUBLISHED: len(observed.ids)}
    assert max(observed.handled.values()) == 1


def test_outage_loses_no_event_and_each_is_handled_once(outage: Observed) -> None:
    assert_each_handled_once(outage)


def test_outage_spends_no_retry(outage: Observed) -> None:
    assert outage.charged == 0


def test_outage_pauses_the_backend_and_the_consumer_reconnects(outage: Observed) -> None:
    assert "Backend 'rabbit' is unavailable" in outage.worker
    assert "Broker unavailable" in outage.consumer
    assert "Broker reachable again" in outage.consumer


def test_outage_is_told_once_not_by_each_pika_reconnect(outage: Observed) -> None:
    told = re.findall(r"rabbitmq: Backend 'rabbit': RabbitMQ at .* is unavailable", outage.worker)
    assert len(told) == 1
    assert not PIKA_NOISE.search(outage.worker + outage.consumer)


def test_frozen_loses_no_event_and_each_is_handled_once(frozen: Observed) -> None:
    assert_each_handled_once(frozen)


def test_frozen_spends_no_retry(frozen: Observed) -> None:
    assert frozen.charged == 0


def test_frozen_sends_end_at_the_deadline_as_an_outage(frozen: Observed) -> None:
    missing = r"Backend 'rabbit' is unavailable \(.*(confirms missing|no answer)"
    assert re.search(missing, frozen.worker), frozen.worker[-3000:]


def test_a_frozen_broker_logs_one_warning_then_one_info(
    node: RabbitMQNode, caplog: pytest.LogCaptureFixture
) -> None:
    drill_queue(node, "quiet")
    event = published_event(event_type="quiet.event")
    caplog.set_level(logging.DEBUG)
    with RabbitMQBackend("rabbit", url=node.url, send_timeout=1) as backend:
        assert backend.send_batch([event]) == {}
        node.freeze()
        try:
            for _ in range(2):  # confirms missing, then no answer to a new connection
                with pytest.raises(BackendUnavailable):
                    backend.send_batch([event])
        finally:
            node.thaw()
        assert backend.send_batch([event]) == {}
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    told = [r for r in caplog.records if r.name == "django_broadcaster.backends.rabbitmq"]
    assert [(r.levelname, r.getMessage()[:30]) for r in loud] == [
        ("WARNING", "Backend 'rabbit': RabbitMQ at ")
    ]
    assert [r.levelname for r in told] == ["WARNING", "INFO"]
    assert "is reachable again" in told[1].getMessage()
    assert any(r.name.startswith("pika") for r in caplog.records)  # there, at DEBUG


# --- the worker SIGKILLed mid-batch ----------------------------------------------------------


@pytest.fixture(scope="module")
def killed(node: RabbitMQNode, tmp_path_factory: pytest.TempPathFactory) -> Observed:
    """SIGKILL the worker while it delivers 5,000 events, then let a second worker finish."""
    log_dir = tmp_path_factory.mktemp("rabbitmq-killed")
    queue = drill_queue(node, "killed")
    ids = publish(5000)
    backends = {"rabbit": rabbit_backend(node.url)}
    settings = {"BATCH_SIZE": BATCH_SIZE, "LEASE_DURATION": 3}
    with start_worker(log_dir, "first", backends=backends, settings=settings) as first:
        poll(lambda: queue.count() >= 1000, 60, "1,000 events in the queue")
        first.kill()
    with start_worker(log_dir, "second", backends=backends, settings=settings) as second:
        # not --burst: the killed worker's rows come back only once its lease has run out
        poll(lambda: drill_published(len(ids)), 120, "every event published")
        assert second.stop() == 0, second.tail()
    copies = queue.count()
    with start_consumer(node, queue, log_dir, "--burst") as consumer:
        assert consumer.wait() == 0, consumer.tail()
    observed = observe(ids, copies, second, consumer)
    report(
        "rabbitmq worker killed",
        f"5000 events; {copies - len(ids)} duplicates in the queue (bound: one batch, "
        f"{BATCH_SIZE}); {consumer_stats(observed.consumer)}",
    )
    return observed


def test_a_killed_worker_loses_nothing_and_each_event_is_handled_once(killed: Observed) -> None:
    assert_each_handled_once(killed)


def test_a_killed_worker_duplicates_at_most_one_batch(killed: Observed) -> None:
    assert 0 <= killed.copies_in_queue - len(killed.ids) <= BATCH_SIZE
