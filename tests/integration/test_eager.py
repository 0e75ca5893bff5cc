"""Eager mode: the publishing process delivers its events itself once its transaction commits."""

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from django_broadcaster.backends import locmem
from django_broadcaster.events import CloudEvent
from django_broadcaster.outbox import leases
from django_broadcaster.outbox.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry, event_registry
from django_broadcaster.testing import run_worker
from django_broadcaster.worker import eager

LOCMEM = {"mem": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}
EAGER = {"EAGER": True, "BACKENDS": LOCMEM}
LEASE = timedelta(minutes=1)


@pytest.fixture
def handled() -> Iterator[list[CloudEvent]]:
    """Yield the events a global ``order.created`` handler got, eagerly; unregister it after."""
    seen: list[CloudEvent] = []
    with _registered("order.created", seen.append):
        yield seen


class _registered:
    """Register ``handler`` for ``event_type`` in the global registry (eager mode's) for a block."""

    def __init__(self, event_type: str, handler: Callable[[CloudEvent], None]) -> None:
        self.event_type, self.handler = event_type, handler

    def __enter__(self) -> None:
        event_registry.register(self.event_type)(self.handler)

    def __exit__(self, *exc: object) -> None:
        event_registry.unregister(self.handler, self.event_type)


def sent() -> list[Any]:
    return [event.data for event in locmem.outbox]


@pytest.mark.django_db(transaction=True)
@override_settings(BROADCASTER=EAGER)
def test_events_go_out_when_the_transaction_commits(handled: list[CloudEvent]) -> None:
    with transaction.atomic():
        row = publisher.publish_event("order.created", "shop", {"order": 1})
        publisher.publish_events(
            [CloudEvent("order.created", "shop", {"order": n}) for n in (2, 3)]
        )
        assert (sent(), handled) == ([], [])  # nothing before the commit
    assert sent() == [{"order": 1}, {"order": 2}, {"order": 3}]
    assert [event.data for event in handled] == [{"order": 1}, {"order": 2}, {"order": 3}]
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {Status.PUBLISHED}
    row.refresh_from_db()
    assert row.lease_token is None and row.retry_count == 0


@pytest.mark.django_db(transaction=True)
@override_settings(BROADCASTER=EAGER)
def test_nothing_goes_out_when_the_transaction_rolls_back(handled: list[CloudEvent]) -> None:
    with transaction.atomic():
        publisher.publish_event("order.created", "shop", {"order": 1})
        transaction.set_rollback(True)
    with transaction.atomic():
        kept = publisher.publish_event("order.created", "shop", {"order": 2})
        try:
            with transaction.atomic():  # a savepoint that rolls back
                publisher.publish_event("order.created", "shop", {"order": 3})
                raise RuntimeError("undo")
        except RuntimeError:
            pass
    assert sent() == [{"order": 2}]
    assert [event.id for event in handled] == [str(kept.pk)]
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db(transaction=True)
@override_settings(BROADCASTER=EAGER)
def test_outside_a_transaction_the_event_goes_out_at_once(handled: list[CloudEvent]) -> None:
    publisher.publish_event("order.created", "shop", {"order": 1})
    assert sent() == [{"order": 1}] and len(handled) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_eager_delivery_reaches_redis(
    redis_url: str, unique_name: str, redis_client: Any, handled: list[CloudEvent]
) -> None:
    redis = {
        "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
        "OPTIONS": {"url": redis_url, "stream_name": unique_name},
    }
    with override_settings(BROADCASTER={"EAGER": True, "BACKENDS": {"redis": redis}}):
        with transaction.atomic():
            row = publisher.publish_event("order.created", "shop", {"order": 7})
            assert redis_client.xlen(unique_name) == 0
        assert redis_client.xlen(unique_name) == 1
    [(_, fields)] = redis_client.xrange(unique_name)
    assert fields[b"event_id"] == str(row.pk).encode()
    assert [event.id for event in handled] == [str(row.pk)]
    assert OutboxEvent.objects.get(pk=row.pk).status == Status.PUBLISHED


@pytest.mark.django_db(transaction=True)
def test_the_durable_path_stays_the_default(handled: list[CloudEvent]) -> None:
    with transaction.atomic():
        publisher.publish_event("order.created", "shop", {"order": 1})
    assert (sent(), handled) == ([], [])
    assert OutboxEvent.objects.get().status == Status.PENDING


@pytest.mark.django_db(transaction=True)
@override_settings(BROADCASTER=EAGER)
def test_rows_a_worker_claimed_first_are_left_to_it(handled: list[CloudEvent]) -> None:
    claims: list[leases.Claim] = []
    with transaction.atomic():
        # A worker's claim lands between the commit and the eager delivery.
        transaction.on_commit(lambda: claims.append(leases.claim(10, LEASE)))
        row = publisher.publish_event("order.created", "shop", {"order": 1})
    assert [claimed.pk for claimed in claims[0].rows] == [row.pk]
    assert (sent(), handled) == ([], [])
    assert OutboxEvent.objects.get().lease_token == claims[0].token


@pytest.mark.django_db(transaction=True)
@override_settings(BROADCASTER=EAGER)
def test_a_failed_delivery_is_recorded_and_left_for_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(event: CloudEvent) -> None:
        raise ValueError("no orders today")

    with _registered("order.created", refuse), caplog.at_level(logging.ERROR), transaction.atomic():
        row = publisher.publish_event("order.created", "shop", {"order": 1})
    row.refresh_from_db()
    assert (row.status, row.retry_count, row.lease_token) == (Status.PENDING, 1, None)
    assert "no orders today" in row.last_error
    assert sent() == [{"order": 1}]  # the backend has it; a retry redoes only the handler


@pytest.mark.django_db(transaction=True)
@override_settings(BROADCASTER=EAGER)
def test_a_handlers_follow_up_goes_out_eagerly_too() -> None:
    invoiced: list[CloudEvent] = []

    def invoice(event: CloudEvent) -> None:
        publisher.publish_event("invoice.requested", "billing", {"order": event.data["order"]})

    with (
        _registered("order.created", invoice),
        _registered("invoice.requested", invoiced.append),
        transaction.atomic(),
    ):
        publisher.publish_event("order.created", "shop", {"order": 1})
    assert [event.data for event in invoiced] == [{"order": 1}]
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {Status.PUBLISHED}


@pytest.mark.django_db
@override_settings(BROADCASTER=EAGER)
def test_in_a_tests_transaction_events_go_out_with_the_captured_callbacks(
    handled: list[CloudEvent], django_capture_on_commit_callbacks: Any
) -> None:
    publisher.publish_event("order.created", "shop", {"order": 1})
    assert (sent(), handled) == ([], [])  # the test's transaction never commits
    with django_capture_on_commit_callbacks(execute=True):
        publisher.publish_event("order.created", "shop", {"order": 2})
    # The callbacks captured are those of the block; the first event waits for a worker.
    assert sent() == [{"order": 2}] and len(handled) == 1


@pytest.mark.django_db(transaction=True)
@override_settings(BROADCASTER=EAGER)
def test_one_commit_is_delivered_as_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []

    def counting_claim(limit: int, *args: Any, **kwargs: Any) -> leases.Claim:
        claimed = leases.claim(limit, *args, **kwargs)
        batches.append(len(claimed.rows))
        return claimed

    monkeypatch.setattr(eager, "claim", counting_claim)
    with transaction.atomic():
        for n in range(5):
            publisher.publish_event("order.created", "shop", {"order": n})
        publisher.publish_events(
            [CloudEvent("order.created", "shop", {"order": n}) for n in (5, 6)]
        )
    publisher.publish_event("order.created", "shop", {"order": 7})  # autocommit: at once
    assert batches == [7, 1]
    assert sent() == [{"order": n} for n in range(8)]


@pytest.mark.django_db(transaction=True)
@override_settings(BROADCASTER={**EAGER, "HANDLER_TIMEOUT": timedelta(seconds=5)})
def test_a_worker_in_an_eager_process_delivers_its_handlers_follow_ups_itself() -> None:
    # The follow-up commits on the worker's handler thread; delivering it eagerly there would
    # wait on that very thread until HANDLER_TIMEOUT.
    registry = EventRegistry()
    invoiced: list[CloudEvent] = []

    @registry.register("order.created")
    def invoice(event: CloudEvent) -> None:
        publisher.publish_event("invoice.requested", "billing", {"order": event.data["order"]})

    registry.register("invoice.requested")(invoiced.append)
    with override_settings(BROADCASTER={"BACKENDS": LOCMEM}):  # not eager while publishing
        publisher.publish_event("order.created", "shop", {"order": 1})
    started = time.monotonic()
    stats = run_worker(registry=registry)
    assert time.monotonic() - started < 5  # no handler call waited out its timeout
    assert (stats.published, stats.retried, len(invoiced)) == (2, 0, 1)
