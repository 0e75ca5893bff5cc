"""The worker delivers, retries only what failed, tracks each destination, and survives outages."""

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from django_broadcaster.backends import BaseBackend, LocMemBackend, locmem
from django_broadcaster.conf import get_settings
from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.signals import event_failed, event_published
from django_broadcaster.worker import Worker
from tests.doubles import (
    HangingBackend,
    RejectingBackend,
    SlowlyUnavailableBackend,
    UnavailableBackend,
)

pytestmark = pytest.mark.django_db(transaction=True)

LOCMEM = {"BACKEND": "django_broadcaster.backends.LocMemBackend"}


def make_worker(
    registry: EventRegistry | None = None,
    backends: Mapping[str, BaseBackend] | None = None,
    **kwargs: object,
) -> Worker:
    """Return a worker on the current settings; ``backends`` replaces ``BACKENDS``' if given."""
    return Worker(
        config=get_settings(),
        registry=registry or EventRegistry(),
        backends=backends,
        **kwargs,  # type: ignore[arg-type]
    )


def make_due(*rows: OutboxEvent) -> None:
    """Pretend the retry delay has passed."""
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(
        scheduled_at=timezone.now() - timedelta(seconds=1)
    )


def test_delivers_to_backends_and_handlers_then_marks_published() -> None:
    registry = EventRegistry()
    typed: list[CloudEvent] = []
    everything: list[CloudEvent] = []
    registry.register("order.created")(typed.append)
    registry.register()(everything.append)
    created = publisher.publish_event("order.created", "shop", {"n": 1})
    other = publisher.publish_event("order.paid", "shop", {"n": 2})

    stats = make_worker(registry, burst=True).run()

    assert stats.published == 2
    assert [e.id for e in typed] == [str(created.id)]
    assert {e.id for e in everything} == {str(created.id), str(other.id)}
    assert {e.id for e in locmem.outbox} == {str(created.id), str(other.id)}
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {Status.PUBLISHED}
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0


def test_stacked_registration_covers_several_types() -> None:
    registry = EventRegistry()
    seen: list[str] = []

    @registry.register("a")
    @registry.register("b")
    def handler(event: CloudEvent) -> None:
        seen.append(event.event_type)

    publisher.publish_event("a", "s")
    publisher.publish_event("b", "s")
    make_worker(registry, burst=True).run()
    assert sorted(seen) == ["a", "b"]


def test_a_retry_redoes_only_the_failed_destination() -> None:
    picky = RejectingBackend("picky")
    backends = {"good": LocMemBackend("good"), "picky": picky}
    bad = publisher.publish_event("t", "s", {"reject": True}, max_retries=3)
    fine = publisher.publish_event("t", "s", {"reject": False})

    make_worker(backends=backends, burst=True).run()

    bad.refresh_from_db()
    assert bad.status == Status.PENDING
    assert bad.retry_count == 1
    assert bad.delivered == ["good"]
    assert bad.last_error.startswith("picky: EventRejected: too large")
    assert bad.scheduled_at > timezone.now()
    assert OutboxEvent.objects.get(pk=fine.pk).status == Status.PUBLISHED

    make_due(bad)
    locmem.outbox.clear()
    make_worker(backends=backends, burst=True).run()

    assert locmem.outbox == []  # "good" already had it: never sent twice
    assert picky.calls.count(str(bad.id)) == 2
    bad.refresh_from_db()
    assert (bad.retry_count, bad.status) == (2, Status.PENDING)


def test_after_max_retries_the_event_fails_with_last_error() -> None:
    backends = {"picky": RejectingBackend("picky")}
    failures: list[str] = []

    def on_failed(sender: type, event: CloudEvent, error: str, **kwargs: object) -> None:
        failures.append(error)

    bad = publisher.publish_event("t", "s", {"reject": True}, max_retries=1)
    event_failed.connect(on_failed)
    try:
        make_worker(backends=backends, burst=True).run()
        make_due(bad)
        make_worker(backends=backends, burst=True).run()
    finally:
        event_failed.disconnect(on_failed)
    bad.refresh_from_db()
    assert (bad.status, bad.retry_count) == (Status.FAILED, 2)
    assert bad.last_error == "picky: EventRejected: too large for this broker"
    assert failures == [bad.last_error]
    make_due(bad)
    # Failed events are not claimed again.
    assert make_worker(backends=backends, burst=True).run().batches == 0


def test_a_failing_handler_fails_only_its_own_destination() -> None:
    registry = EventRegistry()
    good_calls: list[str] = []

    @registry.register("t")
    def broken(event: CloudEvent) -> None:
        raise ValueError("handler bug")

    registry.register("t")(lambda event: good_calls.append(str(event.id)))
    row = publisher.publish_event("t", "s")

    make_worker(registry, burst=True).run()
    row.refresh_from_db()
    assert row.retry_count == 1
    assert "default" in row.delivered
    assert any(d.endswith("<lambda>") for d in row.delivered)
    assert "test_a_failing_handler_fails_only_its_own_destination.<locals>.broken" in row.last_error
    assert "ValueError: handler bug" in row.last_error

    make_due(row)
    make_worker(registry, burst=True).run()
    assert good_calls == [str(row.id)]  # the healthy handler ran once, not on the retry
    assert len(locmem.outbox) == 1


def test_an_outage_spends_no_retries_and_pauses_the_backend() -> None:
    down = UnavailableBackend("down")
    rows = [publisher.publish_event("t", "s", {"n": n}, max_retries=0) for n in range(3)]
    worker = make_worker(backends={"good": LocMemBackend("good"), "down": down}, burst=True)

    worker.run_once()
    assert len(down.calls) == 1  # the first call failed; the rest of the batch was not tried
    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.retry_count, row.delivered) == (Status.PENDING, 0, ["good"])
        assert row.last_error.startswith("down: unavailable: ")
    assert worker.breakers["down"].is_open(timezone.now())

    make_due(*rows)
    worker.run_once()
    assert len(down.calls) == 1  # breaker open: the backend was not called again
    assert worker.breakers["down"].open_until is not None

    down.down = False
    worker.breakers["down"].open_until = timezone.now()
    make_due(*rows)
    published: list[str] = []
    event_published.connect(lambda sender, event, **kw: published.append(event.id), weak=False)
    try:
        worker.run_once()
    finally:
        event_published.receivers.clear()
    assert {r.status for r in OutboxEvent.objects.all()} == {Status.PUBLISHED}
    assert sorted(published) == sorted(str(r.id) for r in rows)
    assert len(locmem.outbox) == 3  # the healthy backend got each event once


# The publisher checks the aliases it is given against BACKENDS; the worker gets the instances.
@override_settings(
    BROADCASTER={"BACKENDS": {"a": LOCMEM, "b": {"BACKEND": "tests.doubles.RejectingBackend"}}}
)
def test_events_go_only_to_the_backends_the_publisher_named() -> None:
    picky = RejectingBackend("b")
    row = publisher.publish_event("t", "s", {"reject": True}, backends=["a"])
    make_worker(backends={"a": LocMemBackend("a"), "b": picky}, burst=True).run()
    row.refresh_from_db()
    assert row.status == Status.PUBLISHED
    assert picky.calls == []


def test_max_iterations_bounds_the_loop() -> None:
    for n in range(5):
        publisher.publish_event("t", "s", {"n": n})
    config = replace(get_settings(), batch_size=2)
    stats = Worker(config=config, registry=EventRegistry(), max_iterations=2).run()
    assert stats.published == 4
    assert OutboxEvent.objects.filter(status=Status.PENDING).count() == 1


@override_settings(BROADCASTER={"BREAKER_BASE_DELAY": timedelta(seconds=0.2)})
def test_the_breaker_pause_starts_when_a_slow_failure_ends() -> None:
    slow = SlowlyUnavailableBackend("slow", seconds=0.3)
    rows = [publisher.publish_event("t", "s", {"n": n}) for n in range(2)]
    worker = make_worker(backends={"slow": slow})
    worker.run_once()
    gave_up_at = slow.gave_up_at
    assert gave_up_at is not None
    # The pause (0.1-0.2 s with jitter) runs from the end of the 0.3 s call, not its start.
    open_until = worker.breakers["slow"].open_until
    assert open_until is not None and open_until >= gave_up_at + timedelta(seconds=0.1)
    for row in rows:
        row.refresh_from_db()
        assert row.scheduled_at == open_until  # deferred to the pause's end


def test_published_rows_record_every_destination_they_reached() -> None:
    registry = EventRegistry()
    registry.register("t")(lambda event: None)
    row = publisher.publish_event("t", "s")
    make_worker(registry, burst=True).run()
    row.refresh_from_db()
    backend, handler = sorted(row.delivered)
    assert backend == "default" and handler.startswith("handler:")


@pytest.mark.django_db(transaction=False)
def test_the_worker_runs_inside_a_test_transaction() -> None:
    publisher.publish_event("t", "s")
    assert make_worker(burst=True).run().published == 1


@override_settings(
    BROADCASTER={
        "BACKENDS": {"default": LOCMEM},
        "CLEANUP_AFTER": timedelta(days=7),
        "CLEANUP_INTERVAL": timedelta(hours=1),
    }
)
def test_the_worker_deletes_old_finished_events_when_cleanup_is_on() -> None:
    old = [publisher.publish_event("t", "s") for _ in range(3)]
    recent = publisher.publish_event("t", "s")
    OutboxEvent.objects.filter(pk__in=[r.pk for r in old]).update(
        created_at=timezone.now() - timedelta(days=8)
    )
    OutboxEvent.objects.filter(pk=old[2].pk).update(status=Status.EXPIRED)
    make_worker(burst=True).run()
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [recent.pk]


# A deadline ample for locmem, even on a busy machine.
@override_settings(BROADCASTER={"SEND_DEADLINE": timedelta(seconds=1)})
def test_a_hung_backend_holds_up_the_others_only_until_the_deadline() -> None:
    hung = HangingBackend("hung")
    rows = [publisher.publish_event("t", "s", {"n": n}) for n in range(3)]
    worker = make_worker(backends={"good": LocMemBackend("good"), "hung": hung})
    try:
        summary = worker.run_once()
        later = publisher.publish_event("t", "s", {"n": 3})
        worker.run_once()  # the hung call still runs: the backend is not called again
    finally:
        hung.release.set()
        worker.close()
    assert summary.deferred == 3
    assert len(hung.calls) == 3
    assert len(locmem.outbox) == 4
    for row in [*rows, later]:
        row.refresh_from_db()
        assert (row.status, row.retry_count, row.delivered) == (Status.PENDING, 0, ["good"])
        assert row.scheduled_at > timezone.now()


def test_a_drain_keeps_its_database_connection() -> None:
    for n in range(3):
        publisher.publish_event("t", "s", {"n": n})
    seen: list[object] = []
    registry = EventRegistry()
    registry.register("t")(lambda event: seen.append(connection.connection))
    config = replace(get_settings(), batch_size=1)
    Worker(config=config, registry=registry, burst=True).run()
    assert len(seen) == 3
    assert seen[0] is seen[1] is seen[2]  # not one new connection per batch


def _audit(event: CloudEvent) -> None:
    """A handler for every event."""


def _notify(event: CloudEvent) -> None:
    """A handler for orders."""


def test_the_start_up_line_names_the_backends_and_each_types_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = EventRegistry()
    registry.register("order.paid")(_notify)
    registry.register("order.created")(_notify)
    registry.register()(_audit)
    backends = {"redis": LocMemBackend("redis"), "kafka": LocMemBackend("kafka")}
    with caplog.at_level(logging.INFO, logger="django_broadcaster.worker"):
        make_worker(registry, backends, burst=True).run()
    here = __name__
    assert caplog.records[0].getMessage() == (
        "Outbox worker started, batches of 100. Backends: kafka, redis. Handlers: "
        f"* -> {here}._audit; order.created -> {here}._notify; order.paid -> {here}._notify."
    )


def test_a_worker_with_nothing_configured_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="django_broadcaster.worker"):
        make_worker(backends={}, burst=True).run()
    assert caplog.records[0].getMessage() == (
        "Outbox worker started, batches of 100. Backends: none. Handlers: none."
    )
