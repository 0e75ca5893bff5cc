"""Claims are leases: no row is claimed twice while leased, and a dead worker's rows come back."""

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from django_broadcaster.backends import create_backends
from django_broadcaster.conf import get_settings
from django_broadcaster.formats import to_structured_json
from django_broadcaster.outbox import leases
from django_broadcaster.outbox.models import RELEASED, OutboxEvent, Status
from django_broadcaster.outbox.outcomes import prepare
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker.delivery import couriers_for, deliver

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = timedelta(minutes=1)


def publish(n: int) -> list[OutboxEvent]:
    return [publisher.publish_event("t", "s", {"n": i}) for i in range(n)]


def test_claims_do_not_overlap() -> None:
    publish(10)
    first = leases.claim(4, LEASE)
    second = leases.claim(100, LEASE)
    assert len(first.rows) == 4 and len(second.rows) == 6
    assert not {r.pk for r in first.rows} & {r.pk for r in second.rows}
    assert leases.claim(100, LEASE).rows == []


def test_claim_takes_the_oldest_due_events_first() -> None:
    rows = publish(3)
    OutboxEvent.objects.filter(pk=rows[2].pk).update(
        scheduled_at=timezone.now() - timedelta(hours=1)
    )
    OutboxEvent.objects.filter(pk=rows[1].pk).update(
        scheduled_at=timezone.now() + timedelta(hours=1)
    )
    assert [r.pk for r in leases.claim(1, LEASE).rows] == [rows[2].pk]
    assert [r.pk for r in leases.claim(9, LEASE).rows] == [rows[0].pk]


def test_an_expired_lease_is_claimed_again_and_the_old_owner_cannot_record() -> None:
    publish(3)
    dead = leases.claim(10, LEASE)  # this worker "dies" without recording
    assert leases.claim(10, LEASE).rows == []

    OutboxEvent.objects.update(leased_until=timezone.now() - timedelta(seconds=1))  # lease over
    alive = leases.claim(10, LEASE)
    assert {r.pk for r in alive.rows} == {r.pk for r in dead.rows}

    backends = create_backends()
    couriers = couriers_for(backends, get_settings())
    late = deliver(dead.rows, couriers, EventRegistry())
    prepare(late, dead.token, get_settings()).write()  # the zombie's outcome is ignored
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 0

    prepare(deliver(alive.rows, couriers, EventRegistry()), alive.token, get_settings()).write()
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 3
    assert not OutboxEvent.objects.exclude(**RELEASED).exists()  # no lease left


def test_retry_now_requeues_failed_and_waiting_events_but_not_claimed_ones() -> None:
    failed, waiting, claimed, published = publish(4)
    OutboxEvent.objects.filter(pk=failed.pk).update(status=Status.FAILED, retry_count=6)
    OutboxEvent.objects.filter(pk=waiting.pk).update(
        retry_count=2, scheduled_at=timezone.now() + timedelta(hours=1)
    )
    OutboxEvent.objects.filter(pk=published.pk).update(status=Status.PUBLISHED)
    OutboxEvent.objects.filter(pk__in=[failed.pk, waiting.pk, published.pk]).update(
        lease_token=None
    )
    held = leases.claim(10, LEASE)
    assert [r.pk for r in held.rows] == [claimed.pk]

    assert OutboxEvent.objects.all().retry_now() == 2

    due = OutboxEvent.objects.due(timezone.now())
    assert {r.pk for r in due} == {failed.pk, waiting.pk}
    assert {r.retry_count for r in due} == {0}
    assert OutboxEvent.objects.get(pk=claimed.pk).lease_token == held.token
    assert OutboxEvent.objects.get(pk=published.pk).status == Status.PUBLISHED


def test_only_the_oldest_pending_event_of_a_key_is_claimable() -> None:
    a1, a2, b1, free = (
        publisher.publish_event("t", "s", partition_key="a"),
        publisher.publish_event("t", "s", partition_key="a"),
        publisher.publish_event("t", "s", partition_key="b"),
        publisher.publish_event("t", "s"),
    )
    first = leases.claim(10, LEASE)
    assert {r.pk for r in first.rows} == {a1.pk, b1.pk, free.pk}
    assert leases.claim(10, LEASE).rows == []  # a2 waits while a1 is held

    OutboxEvent.objects.filter(pk=a1.pk).update(  # a1 now waits for a retry
        **RELEASED, scheduled_at=timezone.now() + timedelta(hours=1)
    )
    assert leases.claim(10, LEASE).rows == []  # and a2 still waits behind it

    OutboxEvent.objects.filter(pk=a1.pk).update(status=Status.FAILED)
    assert [r.pk for r in leases.claim(10, LEASE).rows] == [a2.pk]


def test_event_ids_of_one_process_increase() -> None:
    from django_broadcaster.outbox.models import new_event_id

    ids = [new_event_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids[:10]} == {7}


@pytest.mark.parametrize("returning", [True, False], ids=["one-statement", "two-step"])
def test_both_ways_of_leasing_return_the_same_claimed_events(
    returning: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not returning:  # as on a database whose UPDATE cannot return rows
        monkeypatch.setattr(leases, "UPDATE_RETURNING_VENDORS", frozenset())
    row = publisher.publish_event(
        "t", "s", {"n": [1, "ü"]}, subject="o-1", backends=["default"], partition_key="k"
    )
    claim = leases.claim(10, LEASE)
    [claimed] = claim.rows
    assert claimed.event == row.as_cloud_event()
    assert (claimed.pk, claimed.lease_token, claimed.backends) == (
        row.pk,
        claim.token,
        ("default",),
    )
    assert (claimed.delivered, claimed.retry_count, claimed.max_retries) == ((), 0, 5)
    assert leases.claim(10, LEASE).rows == []
    assert OutboxEvent.objects.get(pk=row.pk).lease_token == claim.token


def test_a_batch_of_claimed_events_is_what_the_orm_loads_row_by_row() -> None:
    expires = timezone.now() + timedelta(hours=1)
    rows = [
        publisher.publish_event("t", "s", 1, extensions={"tenant": "a"}, backends=["default"]),
        publisher.publish_event("t", "s", 2, extensions={"tenant": "a"}, expires_at=expires),
        publisher.publish_event("t", "s", 3, extensions={"tenant": "b"}),
        publisher.publish_event("t", "s", 4, extensions={"tenant": "a"}, backends=["default"]),
    ]

    claimed = leases.claim(10, LEASE).rows

    assert [row.event for row in claimed] == [row.as_cloud_event() for row in rows]
    for row, claimed_row in zip(rows, claimed, strict=True):
        stored = OutboxEvent.objects.get(pk=row.pk)
        assert claimed_row.event.time.tzinfo == stored.time.tzinfo  # what Django's loader gives
        assert claimed_row.expires_at == stored.expires_at
        assert claimed_row.backends == (None if stored.backends is None else tuple(stored.backends))
    assert claimed[0].event.extensions is not claimed[1].event.extensions


@pytest.mark.parametrize(
    "data", [{"n": [1, "ü", None], "big": 10**30, "f": 1.5, "s": 'a"b\\c\n'}, "text", 0, None]
)
def test_a_claimed_event_carries_its_stored_json_which_writers_splice_in(data: object) -> None:
    publisher.publish_event("t", "s", data)
    [claimed] = leases.claim(10, LEASE).rows
    stored = claimed.event._data_json
    assert (stored is None) == (data is None)
    if stored is not None:
        assert json.loads(stored) == data
    written = json.loads(to_structured_json(claimed.event))
    assert written == json.loads(to_structured_json(replace(claimed.event)))
    assert written.get("data") == data


def test_the_compiled_claim_uses_the_time_of_each_claim() -> None:
    [row] = publish(1)
    later = timezone.now() + timedelta(seconds=30)
    OutboxEvent.objects.filter(pk=row.pk).update(scheduled_at=later)
    assert leases.claim(10, LEASE).rows == []  # compiled here, not yet due
    OutboxEvent.objects.filter(pk=row.pk).update(scheduled_at=timezone.now())
    assert [r.pk for r in leases.claim(10, LEASE).rows] == [row.pk]


def test_a_claim_holds_events_without_moving_their_time() -> None:
    rows = publish(2)
    before = timezone.now()
    claim = leases.claim(1, LEASE)
    [held] = OutboxEvent.objects.in_flight(timezone.now())
    assert held.pk == claim.rows[0].pk == rows[0].pk
    assert held.scheduled_at == rows[0].scheduled_at
    assert held.leased_until is not None
    assert before + LEASE <= held.leased_until <= timezone.now() + LEASE
    assert [row.pk for row in OutboxEvent.objects.due(timezone.now())] == [rows[1].pk]


def test_a_claim_takes_a_transaction_only_on_postgresql() -> None:
    # SQLite's claim is one statement, atomic by itself: no BEGIN and COMMIT round trips. On
    # PostgreSQL the claim's planner settings (see leases._in_index_order) go first, and last
    # until the end of the claim's transaction.
    leases.claim(10, LEASE)  # compiles the statement, which takes a transaction
    publish(2)
    autocommit_at_each_statement: list[bool] = []

    def observe(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        autocommit_at_each_statement.append(connection.get_autocommit())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(observe):
        claim = leases.claim(10, LEASE)
    assert len(claim.rows) == 2
    expected = [False, False] if connection.vendor == "postgresql" else [True]
    assert autocommit_at_each_statement == expected


def test_a_claim_in_a_callers_transaction_runs_in_a_savepoint() -> None:
    leases.claim(10, LEASE)
    publish(1)
    savepoints_at_each_claim: list[int] = []

    def observe(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if " RETURNING " in sql:
            savepoints_at_each_claim.append(len(connection.savepoint_ids))
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(observe):
        claim = leases.claim(10, LEASE)
    assert len(claim.rows) == 1
    assert savepoints_at_each_claim == [1]


@pytest.mark.postgres
def test_a_claim_takes_no_more_than_its_limit_whatever_the_plan() -> None:
    # A plan that runs the pick of due rows again for each row of the table (a nested loop,
    # which PostgreSQL chose here for a small table) made one claim of 2 lease all 5 rows.
    publish(5)
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("hashjoin", "mergejoin", "material", "hashagg", "sort"):
            cursor.execute(f"SET LOCAL enable_{setting} = off")
        claim = leases.claim(2, LEASE)
    assert len(claim.rows) == 2
    assert OutboxEvent.objects.filter(lease_token=claim.token).count() == 2


@pytest.mark.postgres
def test_a_claim_reads_only_its_rows_when_the_statistics_say_the_table_is_empty() -> None:
    # An ANALYZE that runs while a transaction adds events (autovacuum's may) counts none of
    # them, so the statistics say the table is empty. ``WHERE id IN (SELECT pk FROM picked)``
    # was then planned as a scan of the table that compared every row with every picked id:
    # one claim of 500 beside 20,000 pending events took 2.5 s.
    table_rows = 400
    with transaction.atomic():
        publish(table_rows)
        vacuum_analyze_on_another_connection()
    sql, params = claim_statement(limit=10)
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("hashagg", "sort"):  # as the planner chose with other costs
            cursor.execute(f"SET LOCAL enable_{setting} = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        [[[plan]]] = cursor.fetchall()
        transaction.set_rollback(True)
    # Reading the table once is the planner's fair choice for a small table; once per picked
    # row is not (the old statement read 4,365 rows here).
    assert rows_read(plan["Plan"]) < 2 * table_rows


@pytest.mark.postgres
def test_a_claim_reads_the_due_rows_in_order_when_the_statistics_see_few() -> None:
    # Statistics taken while the outbox was quiet (few rows due, rows out of time order) made
    # PostgreSQL read every due row of a later backlog and sort them, so each claim cost as
    # much as the backlog was long: 20-60 ms per claim of 500 beside 20,000 due events.
    table = OutboxEvent._meta.db_table
    publish(400)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET"
            " scheduled_at = now() - abs(hashtext(id::text)) % 86400 * interval '1 second',"
            " status = CASE WHEN hashtext(id::text) % 20 = 0 THEN 'pending' ELSE 'published' END"
        )
    vacuum_analyze_on_another_connection()
    publish(400)  # the backlog
    count = (  # rows and index entries this transaction read, in the table and its indexes
        "SELECT sum(pg_stat_get_xact_tuples_returned(r) + pg_stat_get_xact_tuples_fetched(r))"
        f" FROM (SELECT '{table}'::regclass AS r"
        f" UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = '{table}'::regclass) t"
    )
    with transaction.atomic(), connection.cursor() as cursor:  # the counts are per transaction
        cursor.execute("SET LOCAL enable_seqscan = off")  # as on a larger table
        cursor.execute(count)
        [[before]] = cursor.fetchall()
        claim = leases.claim(50, LEASE)
        cursor.execute(count)
        [[after]] = cursor.fetchall()
        cursor.execute(
            "SELECT current_setting('enable_sort'), current_setting('enable_bitmapscan')"
        )
        settings_after_the_claim = cursor.fetchone()
    assert len(claim.rows) == 50
    # Each leased row is an entry of the due-row index and of the primary key, and a row read
    # through each: 4 reads. Reading and sorting every due row took 952 here.
    assert after - before <= 5 * 50
    assert settings_after_the_claim == ("on", "on")  # the caller's, back


def vacuum_analyze_on_another_connection() -> None:
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {OutboxEvent._meta.db_table}")
    finally:
        other.close()


def claim_statement(limit: int) -> tuple[str, Any]:
    """Return the SQL and parameters of a claim of ``limit`` (the claim itself goes ahead)."""
    seen: list[tuple[str, Any]] = []

    def observe(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(observe):
        leases.claim(limit, LEASE)
    [statement] = [(sql, params) for sql, params in seen if sql.startswith("WITH picked")]
    return statement


def rows_read(node: dict[str, Any]) -> float:
    """Return how many rows a plan node and its children scanned in tables, or compared."""
    loops = node.get("Actual Loops", 1)
    read = node.get("Rows Removed by Join Filter", 0) * loops
    if node["Node Type"].endswith("Scan") and "Relation Name" in node:
        read += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * loops
    return read + sum(rows_read(child) for child in node.get("Plans", []))
