"""A handler that misses ``HANDLER_TIMEOUT`` fails its event there, and holds up no worker."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connections, transaction
from django.utils import timezone

from django_broadcaster.backends import LocMemBackend
from django_broadcaster.conf import get_settings
from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry, handler_name
from django_broadcaster.worker import Worker, WorkerStats

#: Short for the tests; each call that does not block returns well within it.
TIMEOUT = timedelta(milliseconds=500)
#: How long a worker may take for a batch with one hung handler, on a busy machine.
BOUND_S = 20.0


class Blocking:
    """A handler that blocks on the events whose data says ``block`` until :attr:`release` is
    set; then, as every other call, it creates the user named by ``user``, if any."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered: list[str] = []

    def __call__(self, event: CloudEvent) -> None:
        self.entered.append(str(event.id))
        if event.data.get("block"):
            self.release.wait()
        if event.data.get("user"):
            User.objects.create(username=event.data["user"])


@pytest.fixture
def threads_joined(transactional_db: None) -> Iterator[None]:
    """Wait at the end for the handler threads to end (and close their connections)."""
    yield
    for thread in threading.enumerate():
        if thread.name == "broadcaster-handlers":
            thread.join(BOUND_S)


@pytest.fixture
def blocking(threads_joined: None) -> Iterator[Blocking]:
    """Yield a blocking handler, released at the end."""
    handler = Blocking()
    yield handler
    handler.release.set()


def worker(registry: EventRegistry, **backends: LocMemBackend) -> Worker:
    config = replace(get_settings(), handler_timeout=TIMEOUT, retry_base_delay=timedelta(hours=1))
    return Worker(config=config, registry=registry, backends=backends, burst=True)


def run_bounded(worker: Worker) -> WorkerStats:
    """Run ``worker`` on a thread of its own; fail if it has not returned within ``BOUND_S``."""
    stats: list[WorkerStats] = []

    def run() -> None:
        try:
            stats.append(worker.run())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), f"the worker is still running after {BOUND_S:g} s"
    return stats[0]


def delivery_of(row: OutboxEvent, destination: str) -> dict[str, object]:
    row.refresh_from_db()
    return dict(row.delivery[destination])


def test_a_hung_handler_fails_its_event_and_the_worker_goes_on(
    blocking: Blocking, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    registry = EventRegistry()
    registry.register("order")(blocking)
    registry.register("order")(seen.append)
    hung = publisher.publish_event("order", "shop", {"block": True})
    after = publisher.publish_event("order", "shop", {})
    mem = LocMemBackend("mem")

    with caplog.at_level(logging.ERROR, logger="django_broadcaster.registry"):
        stats = run_bounded(worker(registry, mem=mem))

    name = handler_name(blocking)
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"Handler {name} did not return within 0.5 s on event {hung.id}" in error.getMessage()
    assert "in __call__" in error.getMessage()  # where it hangs
    assert (stats.retried, stats.deferred) == (1, 1)
    assert delivery_of(hung, name)["error"] == "HandlerTimeout: no return within 0.5 s"
    assert hung.retry_count == 1 and set(hung.delivered) == {"mem", handler_name(seen.append)}
    # The hung call goes on, so the handler gets no other: the next event waits, no retry spent.
    busy = delivery_of(after, name)
    assert (busy["state"], busy["attempts"], after.retry_count) == ("unavailable", 0, 0)
    assert busy["error"] == "HandlerBusy: still busy with a late call"
    assert set(after.delivered) == {"mem", handler_name(seen.append)}

    # Another worker (its handler thread free) delivers what waited, and does not send the
    # batch again: the hung event waits for its retry.
    second = EventRegistry()
    second.register("order")(blocking)
    time.sleep(max((after.scheduled_at - timezone.now()).total_seconds(), 0.0))
    assert run_bounded(worker(second, mem=mem)).published == 1
    assert blocking.entered == [str(hung.id), str(after.id)]
    assert sorted(event.id for event in mem.events) == sorted([str(hung.id), str(after.id)])


def test_a_handler_returning_after_its_deadline_is_rolled_back(
    blocking: Blocking, caplog: pytest.LogCaptureFixture
) -> None:
    registry = EventRegistry()
    registry.register("order")(blocking)
    late = publisher.publish_event("order", "shop", {"block": True, "user": "late"})
    in_time = publisher.publish_event("order", "shop", {"user": "in-time"})

    with caplog.at_level(logging.WARNING, logger="django_broadcaster.registry"):
        run_bounded(worker(registry))
        [hung] = [t for t in threading.enumerate() if t.name == "broadcaster-handlers"]
        blocking.release.set()
        hung.join(BOUND_S)

    assert not User.objects.filter(username="late").exists()
    assert "returned after its deadline: rolled back" in caplog.text
    assert delivery_of(late, handler_name(blocking))["state"] == "rejected"
    assert OutboxEvent.objects.get(pk=in_time.pk).status == Status.PENDING  # waits its turn


@pytest.mark.usefixtures("threads_joined")
def test_handlers_run_on_a_thread_that_blocks_stop_signals() -> None:
    seen: list[tuple[str, bool]] = []

    def note(event: CloudEvent) -> None:
        blocked = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        seen.append((threading.current_thread().name, blocked))

    registry = EventRegistry()
    registry.register("order")(note)
    event = publisher.publish_event("order", "shop").as_cloud_event()
    try:
        assert list(registry.call_handlers(event, timeout=TIMEOUT)) == [(handler_name(note), None)]
        with transaction.atomic():  # rows of this transaction are seen by this connection only
            list(registry.call_handlers(event, timeout=TIMEOUT))
    finally:
        registry.close()
    assert seen == [("broadcaster-handlers", True), (threading.current_thread().name, False)]


@pytest.mark.usefixtures("threads_joined")
def test_follow_ups_published_on_the_handler_thread_are_recorded_with_its_success() -> None:
    registry = EventRegistry()

    @registry.register("order")
    def invoice(event: CloudEvent) -> None:
        publisher.publish_event("invoice", "billing")

    order = publisher.publish_event("order", "shop")
    run_bounded(worker(registry))
    assert OutboxEvent.objects.filter(event_type="invoice").count() == 1
    assert OutboxEvent.objects.get(pk=order.pk).delivered == [handler_name(invoice)]
