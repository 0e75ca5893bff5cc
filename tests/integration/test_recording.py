"""Recording outcomes: what the rows end as, and how many transactions that takes."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from django_broadcaster.conf import get_settings
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox import leases
from django_broadcaster.outbox.leases import Claim
from django_broadcaster.outbox.outcomes import Outcome, mark_published, prepare
from django_broadcaster.publishers import publisher
from tests.factories import delivered_to

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = timedelta(minutes=1)


def claimed(n: int) -> Claim:
    for i in range(n):
        publisher.publish_event("t", "s", {"n": i})
    return leases.claim(n, LEASE)


@contextmanager
def statements_seen() -> Iterator[list[tuple[bool, int]]]:
    """Yield a list of (autocommit, savepoint depth) at each UPDATE run."""
    seen: list[tuple[bool, int]] = []

    def observe(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith("UPDATE"):
            seen.append((connection.get_autocommit(), len(connection.savepoint_ids)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(observe):
        yield seen


def test_mark_published_writes_the_outcome_and_clears_the_lease() -> None:
    claim = claimed(3)
    others = claimed(1)
    now = timezone.now()
    ids = [row.pk for row in claim.rows]
    OutboxEvent.objects.filter(pk__in=ids).update(last_error="an earlier attempt")

    delivery = delivered_to("a", "b")
    changed = mark_published("default", claim.token, [*ids, others.rows[0].pk], delivery, now)

    assert changed == 3  # the row under another lease is not this worker's
    rows = OutboxEvent.objects.filter(pk__in=ids)
    assert {
        (r.status, r.published_at, r.last_error, r.lease_token, r.leased_until) for r in rows
    } == {(Status.PUBLISHED, now, "", None, None)}
    assert [r.delivered for r in rows] == [["a", "b"]] * 3
    assert OutboxEvent.objects.get(pk=others.rows[0].pk).status == Status.PENDING


def test_a_batch_that_all_went_well_is_one_statement_without_a_transaction() -> None:
    # BEGIN and COMMIT would be two more round trips for a statement that is atomic by itself.
    claim = claimed(3)
    outcomes = [Outcome(row=row, delivered=["a"]) for row in claim.rows]
    with statements_seen() as seen:
        summary = prepare(outcomes, claim.token, get_settings()).write()
    assert summary.published == 3
    assert seen == [(True, 0)]


def test_several_writes_share_one_transaction() -> None:
    claim = claimed(3)
    first, second, third = claim.rows
    outcomes = [
        Outcome(row=first, delivered=["a"]),
        Outcome(row=second, delivered=["a", "b"]),
        Outcome(row=third, delivered=["a"], errors={"b": "refused"}),
    ]
    with statements_seen() as seen:
        summary = prepare(outcomes, claim.token, get_settings()).write()
    assert (summary.published, summary.retried) == (2, 1)
    assert [autocommit for autocommit, _ in seen] == [False, False, False]
    assert OutboxEvent.objects.get(pk=third.pk).last_error == "b: refused"


def test_a_record_in_a_callers_transaction_runs_in_a_savepoint() -> None:
    claim = claimed(1)
    outcomes = [Outcome(row=claim.rows[0], delivered=["a"])]
    with transaction.atomic(), statements_seen() as seen:
        prepare(outcomes, claim.token, get_settings()).write()
    assert seen == [(False, 1)]
