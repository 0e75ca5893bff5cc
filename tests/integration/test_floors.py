"""A worker's claims ahead read from a floor; no pending row below it is passed over for good."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from django_broadcaster.events import CloudEvent
from django_broadcaster.outbox import leases
from django_broadcaster.outbox.floors import Floor
from django_broadcaster.outbox.models import RELEASED, OutboxEvent, Status
from django_broadcaster.publishers import publisher

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = timedelta(minutes=1)


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def publish_at(*offsets_s: float, key: str | None = None) -> list[OutboxEvent]:
    """Publish one event per offset, scheduled that many seconds before now."""
    now = timezone.now()
    return [
        publisher.publish_event(
            "t", "s", scheduled_at=now - timedelta(seconds=s), partition_key=key
        )
        for s in offsets_s
    ]


def pks(claim: leases.Claim) -> set[Any]:
    return {row.pk for row in claim.rows}


def finish(*rows: Any) -> None:
    OutboxEvent.objects.filter(pk__in=[row.pk for row in rows]).update(
        status=Status.PUBLISHED, **RELEASED
    )


@pytest.mark.parametrize("returning", [True, False], ids=["one-statement", "two-step"])
def test_a_claim_from_a_floor_takes_only_rows_scheduled_at_or_after_it(
    returning: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not returning:  # as on a database whose UPDATE cannot return rows
        monkeypatch.setattr(leases, "UPDATE_RETURNING_VENDORS", frozenset())
    old, at_floor, new = publish_at(30, 20, 10)
    floor = OutboxEvent.objects.get(pk=at_floor.pk).scheduled_at
    claim = leases.claim(10, LEASE, floor=floor)
    assert pks(claim) == {at_floor.pk, new.pk}
    assert {row.scheduled_at for row in claim.rows} >= {floor}
    assert pks(leases.claim(10, LEASE)) == {old.pk}  # no floor: the whole index


def test_the_floor_is_under_the_last_two_claims_and_lapses_after_walk_every() -> None:
    clock = Clock()
    floor = Floor(walk_every=timedelta(seconds=1), clock=clock)
    rows = publish_at(60, 50, 40, 30, 20, 10, 5)
    scheduled = [OutboxEvent.objects.get(pk=row.pk).scheduled_at for row in rows]

    walked = leases.claim(2, LEASE)  # the worker's claim in line: rows 0 and 1
    assert floor.bound() is None  # nothing claimed ahead yet
    first = floor.claim_ahead(2, LEASE, walked)  # rows 2 and 3
    assert pks(first) == {rows[2].pk, rows[3].pk}
    assert floor.bound() == scheduled[0]  # still under the batch before
    second = floor.claim_ahead(1, LEASE, first)  # row 4
    assert floor.bound() == scheduled[2]  # under the last two claims only

    clock.now = 1.0
    assert floor.bound() is None  # time for a walk of the whole index
    floor.claim_ahead(1, LEASE, second)  # that walk: row 5
    assert floor.bound() == scheduled[4]  # still under the batch in hand


def test_a_batch_claimed_in_line_starts_the_floor_again() -> None:
    floor = Floor(walk_every=timedelta(hours=1))
    first, second, third = publish_at(60, 50, 40)
    ahead = floor.claim_ahead(1, LEASE, leases.claim(1, LEASE))
    assert pks(ahead) == {second.pk}
    finish(first, second)
    oldest, older = publish_at(100, 80)  # below the floor of that drain
    walked = leases.claim(1, LEASE)  # in line, after a short batch: the whole index
    assert pks(walked) == {oldest.pk}
    assert pks(floor.claim_ahead(1, LEASE, walked)) == {older.pk}


def rows_below_the_floor() -> dict[str, Callable[[], Any]]:
    """Return ways a pending row comes to be claimable below the floor, each making one."""

    def given_back() -> Any:
        [row] = publish_at(300)
        held = leases.claim(1, LEASE)  # another worker's, which stops
        assert pks(held) == {row.pk}
        assert leases.release(held) == 1
        return row

    def lease_ran_out() -> Any:
        [row] = publish_at(300)
        assert pks(leases.claim(1, LEASE)) == {row.pk}  # another worker's, which dies
        OutboxEvent.objects.filter(pk=row.pk).update(leased_until=timezone.now())
        return row

    def committed_late() -> Any:
        [row] = publish_at(300)  # scheduled long before its transaction committed
        return row

    def behind_its_key() -> Any:
        earlier, later = publish_at(301, 300, key="k")
        assert pks(leases.claim(1, LEASE)) == {earlier.pk}  # another worker's
        finish(earlier)
        return later

    return {
        "given back": given_back,
        "lease ran out": lease_ran_out,
        "committed late": committed_late,
        "behind its key": behind_its_key,
    }


@pytest.mark.parametrize("make", rows_below_the_floor().values(), ids=rows_below_the_floor())
def test_a_row_below_the_floor_is_claimed_by_the_next_walk(make: Callable[[], Any]) -> None:
    floor = Floor(walk_every=timedelta(hours=1))
    draining = publish_at(20, 19, 18, 17)
    walked = leases.claim(2, LEASE)
    finish(*draining[:2])
    below = make()
    ahead = floor.claim_ahead(2, LEASE, walked)
    assert pks(ahead) == {draining[2].pk, draining[3].pk}  # the floor hid it
    assert floor.claim_ahead(2, LEASE, ahead).rows == []  # a claim ahead comes back empty,
    assert pks(leases.claim(2, LEASE)) == {below.pk}  # so the worker's next claim walks


def test_a_row_below_the_floor_is_claimed_ahead_once_walk_every_has_passed() -> None:
    clock = Clock()
    floor = Floor(walk_every=timedelta(seconds=1), clock=clock)
    draining = publish_at(20, 19, 18, 17, 16, 15)
    walked = leases.claim(2, LEASE)
    [late] = publish_at(300)
    ahead = floor.claim_ahead(2, LEASE, walked)
    assert late.pk not in pks(ahead)
    clock.now = 1.0
    assert pks(floor.claim_ahead(2, LEASE, ahead)) == {late.pk, draining[4].pk}


def test_the_next_event_of_a_key_in_the_batch_before_is_not_below_the_floor() -> None:
    # The claim ahead that follows a key's event finds the key's next event held back; the one
    # after it must still see that event, though newer events were claimed meanwhile.
    floor = Floor(walk_every=timedelta(hours=1))
    k1, k2 = publish_at(60, 50, key="k")
    x1, x2, x3, x4 = publish_at(55, 45, 40, 35)
    walked = leases.claim(2, LEASE)
    assert pks(walked) == {k1.pk, x1.pk}
    ahead = floor.claim_ahead(2, LEASE, walked)
    assert pks(ahead) == {x2.pk, x3.pk}  # k2 waits for k1
    finish(k1, x1)
    assert pks(floor.claim_ahead(2, LEASE, ahead)) == {k2.pk, x4.pk}


def test_after_a_walk_ahead_the_floor_is_still_under_the_batch_in_hand() -> None:
    # The walk ahead finds a key's next event held back by the batch in hand; the claim after it
    # must still see that event.
    clock = Clock()
    floor = Floor(walk_every=timedelta(seconds=1), clock=clock)
    x1, x2 = publish_at(70, 65)
    k1, k2 = publish_at(60, 50, key="k")
    x3, x4, x5, x6 = publish_at(58, 45, 40, 35)
    walked = leases.claim(2, LEASE)
    assert pks(walked) == {x1.pk, x2.pk}
    in_hand = floor.claim_ahead(2, LEASE, walked)
    assert pks(in_hand) == {k1.pk, x3.pk}
    finish(x1, x2)
    clock.now = 1.0
    ahead = floor.claim_ahead(2, LEASE, in_hand)  # a walk: k2 waits for k1
    assert pks(ahead) == {x4.pk, x5.pk}
    finish(k1, x3)
    assert pks(floor.claim_ahead(2, LEASE, ahead)) == {k2.pk, x6.pk}


@pytest.mark.postgres
def test_behind_a_held_snapshot_a_claim_from_the_floor_reads_no_delivered_rows_heap() -> None:
    # With a snapshot held, no index scan may mark a delivered row's entry dead, so a walk of
    # the whole due index visits the heap for each; the floor's condition is checked on the
    # entry alone (docs/performance.md, "A long transaction holding vacuum back").
    holder = connection.get_new_connection(connection.get_connection_params())
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT txid_current()")
        delivered = 5_000
        events = [CloudEvent("t", "s", {"n": n}) for n in range(delivered)]
        publisher.publish_events(events, scheduled_at=timezone.now() - timedelta(seconds=1))
        OutboxEvent.objects.update(status=Status.PUBLISHED)
        [due] = publish_at(0)
        floor = OutboxEvent.objects.get(pk=due.pk).scheduled_at
        walked, floored = (claim_buffers(at) for at in (None, floor))
        assert walked > delivered / 50, (walked, floored)  # a heap page for every few entries
        assert floored < walked / 10, (walked, floored)
    finally:
        holder.close()


def claim_buffers(floor: datetime | None) -> int:
    """Return the shared buffers one claim of 100 from ``floor`` reads in the due index's scan
    (its entries and the heap pages they lead to), the claim rolled back."""
    seen: list[tuple[str, Any]] = []

    def observe(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(observe):
        claim = leases.claim(100, LEASE, floor=floor)
    leases.release(claim)
    [(sql, params)] = [(sql, params) for sql, params in seen if sql.startswith("WITH picked")]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # as the claim sets them
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
        [[plan]] = cursor.fetchone()
        transaction.set_rollback(True)
    [scan] = index_scans(plan["Plan"], "outbox_due_idx")
    return int(scan["Shared Hit Blocks"] + scan["Shared Read Blocks"])


def index_scans(node: dict[str, Any], index: str) -> list[dict[str, Any]]:
    """Return the plan nodes under ``node`` (itself included) that scan ``index``."""
    found = [node] if node.get("Index Name") == index else []
    return found + [scan for child in node.get("Plans", []) for scan in index_scans(child, index)]
