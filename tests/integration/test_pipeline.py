"""The worker's pipeline: the next batch claimed, and the last one recorded, while one is sent.

On PostgreSQL (``transaction=True`` tests) the claim and record stages run on threads of their
own; inside a caller's transaction (``transaction=False``) and on SQLite they run in line (depth
0): nothing is lost, reordered or recorded twice either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.utils import timezone

from django_broadcaster.backends.base import BaseBackend, Rejections
from django_broadcaster.conf import get_settings
from django_broadcaster.events import CloudEvent
from django_broadcaster.outbox import floors, leases
from django_broadcaster.outbox.models import RELEASED, OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.signals import event_published
from django_broadcaster.worker import Worker, loop

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_S = 10.0


class ClaimWatch(BaseBackend):
    """Accept a batch once the worker has run a second claim, which claiming ahead does meanwhile.

    ``count`` is a Django ``execute_wrapper`` counting the claims (the one statement with
    ``RETURNING``); :meth:`watching` installs it on the test's connection and on each connection
    opened meanwhile (the claim thread's). A send that sees no second claim within ``WAIT_S``
    notes it, so a worker that waits for the send before claiming again fails the test.
    """

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        self.condition = threading.Condition()
        self.claims = 0
        self.overlapped: list[bool] = []

    def count(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        result = execute(sql, *args)
        if " RETURNING " in sql:
            with self.condition:
                self.claims += 1
                self.condition.notify_all()
        return result

    def watching(self) -> Any:
        def watch(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
            connection.execute_wrappers.append(self.count)

        connection_created.connect(watch, weak=False, dispatch_uid="claim-watch")
        return connection.execute_wrapper(self.count)

    def stop_watching(self) -> None:
        connection_created.disconnect(dispatch_uid="claim-watch")

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        with self.condition:
            self.overlapped.append(self.condition.wait_for(lambda: self.claims >= 2, WAIT_S))
        return {}


@pytest.fixture
def make_worker() -> Iterator[Callable[..., Worker]]:
    """Yield a maker of workers with batches of ``batch_size``; close them after the test."""
    workers: list[Worker] = []

    def make(batch_size: int, **kwargs: Any) -> Worker:
        config = replace(get_settings(), batch_size=batch_size, send_deadline=timedelta(seconds=30))
        workers.append(Worker(config=config, registry=EventRegistry(), **kwargs))
        return workers[-1]

    yield make
    for worker in workers:
        worker.close()


def publish(count: int) -> list[OutboxEvent]:
    return [publisher.publish_event("t", "s", {"n": n}) for n in range(count)]


def settle_claim_ahead(worker: Worker) -> None:
    """Wait for the claim ahead, which may still run on its thread when run_once() returns."""
    if worker._ahead is not None:
        worker._ahead.result()


def leased() -> set[str]:
    rows = OutboxEvent.objects.filter(status=Status.PENDING).exclude(**RELEASED)
    return {str(pk) for pk in rows.values_list("pk", flat=True)}


@pytest.mark.parametrize(
    "in_a_transaction",
    [False, True],
    ids=["own-transactions", "callers-transaction"],
)
def test_the_next_batch_is_claimed_while_this_one_is_sent(
    make_worker: Callable[..., Worker], in_a_transaction: bool
) -> None:
    publish(4)
    watch = ClaimWatch("watch")
    worker = make_worker(2, backends={"watch": watch})
    try:
        with watch.watching():
            if in_a_transaction:
                with transaction.atomic():
                    worker.run_once()
            else:
                worker.run_once()
    finally:
        watch.stop_watching()
    assert watch.overlapped == [True]
    assert watch.claims == 2
    assert len(leased()) == 2


def test_a_full_batch_leaves_the_next_batch_leased_for_the_next_call(
    make_worker: Callable[..., Worker],
) -> None:
    rows = publish(5)
    worker = make_worker(2, backends={})
    worker.run_once()
    settle_claim_ahead(worker)
    assert leased() == {str(row.pk) for row in rows[2:4]}

    worker.run_once()
    settle_claim_ahead(worker)

    published = OutboxEvent.objects.filter(status=Status.PUBLISHED).values_list("pk", flat=True)
    assert {str(pk) for pk in published} == {str(row.pk) for row in rows[:4]}
    assert leased() == {str(rows[4].pk)}  # the second batch was full: the next is claimed
    worker.close()
    assert leased() == set()


class RecordWatch(BaseBackend):
    """Accept the batch after ``first`` once the worker has recorded ``first`` (its signal)."""

    def __init__(self, alias: str, *, first: Sequence[OutboxEvent], **options: Any) -> None:
        super().__init__(alias, **options)
        self.first_ids = {str(row.pk) for row in first}
        self.first_recorded = threading.Event()
        self.overlapped: list[bool] = []

    def published(self, sender: Any, event: CloudEvent, **kwargs: Any) -> None:
        self.first_ids.discard(str(event.id))
        if not self.first_ids:
            self.first_recorded.set()

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        if not {str(event.id) for event in events} & self.first_ids:
            self.overlapped.append(self.first_recorded.wait(WAIT_S))
        return {}


@pytest.mark.postgres
def test_with_overlap_a_batch_is_recorded_while_the_next_is_sent(
    make_worker: Callable[..., Worker],
) -> None:
    rows = publish(4)
    watch = RecordWatch("watch", first=rows[:2])
    event_published.connect(watch.published, weak=False, dispatch_uid="record-watch")
    try:
        stats = make_worker(2, backends={"watch": watch}, overlap=True, burst=True).run()
    finally:
        event_published.disconnect(dispatch_uid="record-watch")
    assert watch.overlapped == [True]
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 4
    assert stats.published == 4
    assert leased() == set()


def test_a_record_that_fails_is_kept_and_written_by_the_next_attempt(
    make_worker: Callable[..., Worker],
) -> None:
    rows = publish(2)
    worker = make_worker(2, backends={}, overlap=False)

    def restarting(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if sql.startswith("UPDATE"):
            raise DatabaseError("the database system is shutting down")
        return execute(sql, *args)

    with connection.execute_wrapper(restarting), pytest.raises(DatabaseError):
        worker.run_once()
    assert leased() == {str(row.pk) for row in rows}  # still this worker's, not yet recorded
    worker.flush()

    published = OutboxEvent.objects.filter(status=Status.PUBLISHED).values_list("pk", flat=True)
    assert {str(pk) for pk in published} == {str(row.pk) for row in rows}


def test_the_stages_overlap_where_another_connection_sees_the_rows(
    make_worker: Callable[..., Worker],
) -> None:
    publish(1)
    worker = make_worker(2, backends={})
    worker.run_once()
    postgresql = connection.vendor == "postgresql"
    assert worker._pipeline().depth == 2 * postgresql
    with transaction.atomic():
        inside = make_worker(2, backends={})
        inside.run_once()
        assert inside._pipeline().depth == 0


def test_a_partial_batch_claims_nothing_ahead(make_worker: Callable[..., Worker]) -> None:
    publish(3)
    make_worker(10, backends={}).run_once()
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 3
    assert leased() == set()


def test_a_stopping_worker_claims_nothing_ahead(make_worker: Callable[..., Worker]) -> None:
    publish(4)
    worker = make_worker(2, backends={})
    worker.stop()
    worker.run_once()
    assert leased() == set()


def test_run_releases_the_batch_claimed_ahead_without_spending_a_retry(
    make_worker: Callable[..., Worker],
) -> None:
    publish(5)
    stats = make_worker(2, backends={}, max_iterations=1).run()
    assert stats.published == 2
    pending = OutboxEvent.objects.filter(status=Status.PENDING)
    assert pending.count() == 3
    assert leased() == set()
    assert not pending.filter(retry_count__gt=0).exists()
    assert OutboxEvent.objects.due(timezone.now()).count() == 3  # due again


def test_claiming_ahead_holds_back_a_keys_next_event(make_worker: Callable[..., Worker]) -> None:
    first = publisher.publish_event("t", "s", {"n": 1}, partition_key="k")
    second = publisher.publish_event("t", "s", {"n": 2}, partition_key="k")
    unkeyed = publisher.publish_event("t", "s", {"n": 3})
    with transaction.atomic():  # claims in line: a claim thread could run later
        make_worker(1, backends={}).run_once()
    assert OutboxEvent.objects.get(pk=first.pk).status == Status.PUBLISHED
    # While the first event of "k" was on its way, the second was not claimable.
    assert leased() == {str(unkeyed.pk)}
    assert OutboxEvent.objects.get(pk=second.pk).lease_token is None


@pytest.mark.django_db(transaction=False)
def test_a_run_inside_a_test_transaction_releases_the_batch_claimed_ahead(
    make_worker: Callable[..., Worker],
) -> None:
    publish(5)
    stats = make_worker(2, backends={}, max_iterations=1).run()
    assert stats.published == 2
    # The release must not close the connection: this test's transaction is still open on it.
    assert leased() == set()
    assert OutboxEvent.objects.filter(status=Status.PENDING).count() == 3


@pytest.mark.postgres
def test_on_postgresql_the_next_batch_is_claimed_on_a_thread_of_its_own(
    make_worker: Callable[..., Worker],
) -> None:
    # Its waits for the database then overlap the batch's record as well as its sends.
    publish(4)
    opened: dict[str, BaseDatabaseWrapper] = {}

    def note(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        opened[threading.current_thread().name] = connection

    connection_created.connect(note, weak=False, dispatch_uid="note-thread")
    try:
        worker = make_worker(2, backends={})
        worker.run_once()
        settle_claim_ahead(worker)
        assert leased() != set()  # the next batch, leased on the claim thread
        worker.close()
    finally:
        connection_created.disconnect(dispatch_uid="note-thread")
    [thread] = [name for name in opened if name.startswith("broadcaster-database")]
    assert opened[thread].connection is None  # closed by worker.close()


@pytest.mark.postgres
def test_a_failed_claim_ahead_is_logged_and_claimed_again_in_line(
    make_worker: Callable[..., Worker],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    publish(4)
    claims: list[str] = []

    def fail_the_claim_ahead(*args: Any, **kwargs: Any) -> Any:
        claims.append(threading.current_thread().name)
        if len(claims) == 2:
            raise DatabaseError("the server closed the connection")
        return leases.claim(*args, **kwargs)

    monkeypatch.setattr(loop, "claim", fail_the_claim_ahead)  # in line
    monkeypatch.setattr(floors, "claim", fail_the_claim_ahead)  # ahead, from the floor
    worker = make_worker(2, backends={})
    worker.run_once()
    assert worker.run_once().published == 2
    assert "Claiming the next batch early failed" in caplog.text
    main = threading.main_thread().name
    assert claims[0] == main and claims[1].startswith("broadcaster-database")  # ahead, on its own
    assert claims[2] == main  # the failed claim ahead is replaced by one in line
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 4
