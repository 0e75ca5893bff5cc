"""The benchmark table's goals: each one is judged, met or not."""

import pytest

from benchmarks.report import Figure, Goal


def test_a_goal_on_the_measured_value_is_judged_without_a_reference() -> None:
    goal = Goal(">=", 10_000, "measured")
    assert goal.met(Figure("drain", 7_349, "ev/s", goal=goal)) is False
    assert goal.met(Figure("drain", 12_000, "ev/s", goal=goal)) is True


def test_a_goal_on_something_else_is_refused() -> None:
    # Goal(">=", 10_000, "issue 23") once left the RabbitMQ figure's "met?" column blank.
    with pytest.raises(ValueError, match="on measured or ratio"):
        Goal(">=", 10_000, "issue 23")  # type: ignore[arg-type]
