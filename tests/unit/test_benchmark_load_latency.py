"""The pure parts of the latency-under-load measurement (benchmarks/load_latency.py)."""

import pytest

from benchmarks.load_latency import TRANSACTIONS_PER_S, events_per_transaction, percentiles


def test_percentiles_are_arrival_minus_commit_over_every_event() -> None:
    committed = {str(n): 1000.0 for n in range(101)}
    arrived = {str(n): 1000 + n for n in range(101)}  # latencies 0..100 ms
    assert percentiles(committed, arrived) == pytest.approx((50, 99))


def test_an_event_that_never_arrived_is_an_error_not_a_missing_sample() -> None:
    with pytest.raises(ValueError, match="1 of 2 committed events never arrived"):
        percentiles({"a": 1.0, "b": 2.0}, {"a": 5})


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(1.0, 1), (TRANSACTIONS_PER_S, 1), (TRANSACTIONS_PER_S + 1, 2), (TRANSACTIONS_PER_S * 14, 14)],
)
def test_transactions_grow_rather_than_a_publisher_s_commit_rate(
    rate: float, expected: int
) -> None:
    assert events_per_transaction(rate) == expected
