"""The long-transaction benchmark's snapshot holds vacuum back, and the table's size counts
show it (benchmarks/long_transaction.py, benchmarks/table_size.py)."""

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from benchmarks.database import connect
from benchmarks.long_transaction import held_snapshot
from benchmarks.table_size import table_size

pytestmark = pytest.mark.postgres


@pytest.fixture
def scratch_table() -> Iterator[tuple[str, str]]:
    """Yield (database, table): a table of 100 rows, dropped afterwards."""
    database = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
    table = f"bench_snapshot_{uuid.uuid4().hex[:8]}"
    with connect(database) as connection:
        connection.execute(f"CREATE TABLE {table} AS SELECT g AS n FROM generate_series(1, 100) g")
        yield database, table
        connection.execute(f"DROP TABLE {table}")


def test_dead_rows_outlive_vacuum_while_the_snapshot_is_held(
    scratch_table: tuple[str, str],
) -> None:
    database, table = scratch_table
    with connect(database) as connection:
        with held_snapshot(database):
            connection.execute(f"UPDATE {table} SET n = n + 1")
            connection.execute(f"VACUUM {table}")
            held = table_size(connection, table)
        connection.execute(f"VACUUM {table}")
        released = table_size(connection, table)
    assert held.dead_bytes > 0
    assert released.dead_bytes == 0
    assert released.live_bytes == held.live_bytes
