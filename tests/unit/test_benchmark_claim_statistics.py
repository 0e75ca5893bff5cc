"""Claims summed from pg_stat_statements (benchmarks/claim_statistics.py)."""

import pytest

from benchmarks.claim_statistics import ClaimStatistics


def test_claims_are_summed_per_call_and_per_leased_row() -> None:
    claims = ClaimStatistics(calls=40, rows=20_000, total_ms=600.0, buffers=160_000)
    assert claims.mean_ms == pytest.approx(15)
    assert claims.rows_per_call == pytest.approx(500)
    assert claims.us_per_row == pytest.approx(30)
    assert claims.buffers_per_row == pytest.approx(8)


def test_no_claim_and_no_row_give_zero_rather_than_a_division_error() -> None:
    claims = ClaimStatistics(calls=0, rows=0, total_ms=0.0, buffers=0)
    assert (claims.mean_ms, claims.rows_per_call, claims.us_per_row) == (0, 0, 0)
    assert claims.buffers_per_row == 0
