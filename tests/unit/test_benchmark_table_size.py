"""The outbox table's size against its live rows (benchmarks/table_size.py)."""

import pytest

from benchmarks.table_size import TableSize


def test_after_vacuum_the_space_in_use_is_near_the_live_rows() -> None:
    size = TableSize(
        table_bytes=1_000_000, live_bytes=100_000, dead_bytes=0, free_bytes=890_000, fillfactor=50
    )
    assert size.in_use_per_live == pytest.approx(1.1)
    assert size.size_per_packed == pytest.approx(5)


def test_a_table_written_afresh_at_its_fillfactor_is_packed() -> None:
    size = TableSize(
        table_bytes=200_000, live_bytes=100_000, dead_bytes=0, free_bytes=100_000, fillfactor=50
    )
    assert size.size_per_packed == pytest.approx(1)


def test_an_empty_table_has_ratios_of_zero() -> None:
    size = TableSize(table_bytes=0, live_bytes=0, dead_bytes=0, free_bytes=0, fillfactor=100)
    assert (size.in_use_per_live, size.size_per_packed) == (0, 0)
