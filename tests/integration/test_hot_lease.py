"""On PostgreSQL, taking and giving back a lease rewrite the row in its page (HOT updates).

The lease lives in columns outside every index, and the outbox's pages keep room for a row's new
version, so a lease adds no index entry. The counters are this transaction's own
(``pg_stat_xact_user_tables``), so no other test's writes reach them.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction

from django_broadcaster.models import OutboxEvent
from django_broadcaster.outbox import leases
from django_broadcaster.publishers import publisher

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
LEASE = timedelta(minutes=1)


def updates_so_far() -> tuple[int, int]:
    """Return (updated rows, of which HOT) of the outbox in the current transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relid = %s::regclass",
            [OutboxEvent._meta.db_table],
        )
        upd, hot = cursor.fetchone()
    return upd, hot


def test_the_outbox_pages_keep_room_for_new_row_versions() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [OutboxEvent._meta.db_table]
        )
        [options] = cursor.fetchone()
    assert "fillfactor=50" in options


def test_leasing_and_releasing_are_hot_updates() -> None:
    for n in range(5):
        publisher.publish_event("t", "s", {"n": n})
    with transaction.atomic():
        claim = leases.claim(10, LEASE)
        assert len(claim.rows) == 5
        assert updates_so_far() == (5, 5)
        assert leases.release(claim) == 5
        assert updates_so_far() == (10, 10)
