"""Two benchmark runs on one PostgreSQL server would drop each other's databases."""

import pytest

from benchmarks.database import exclusive_run

pytestmark = pytest.mark.postgres


def test_a_second_run_on_the_same_server_refuses_to_start() -> None:
    with (
        exclusive_run(),
        pytest.raises(RuntimeError, match="another benchmark run"),
        exclusive_run(),
    ):
        pass  # pragma: no cover - never reached


def test_the_lock_ends_with_the_run() -> None:
    with exclusive_run():
        pass
    with exclusive_run():
        pass
