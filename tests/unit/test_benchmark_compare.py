"""Comparing two trees' benchmark figures (benchmarks/compare.py): parsing, ratios, verdicts."""

from pathlib import Path

import pytest

from benchmarks.compare import (
    ROOT,
    Comparison,
    Reading,
    better,
    check_own_code,
    format_comparisons,
    parse_table,
    round_order,
    summarize,
    within_tolerance,
)
from benchmarks.report import Figure, Goal, format_table

# What `python -m benchmarks --smoke` printed at ec70c10 (some rows), the format REF prints.
PRINTED = """\
2026-12-07, 2 CPUs, Python 3.11.7, PostgreSQL 15.18 (Debian 15.18-0+deb12u1) (fsync=on, synchronous_commit=on), Redis 7.0.15; smoke run, 1 round(s), 16 s

| figure                                       | measured    | reference                          | ratio | goal              | met? |
| ---                                          | ---         | ---                                | ---   | ---               | ---  |
| Redis drain, 1 worker                        | 11,609 ev/s |                                    |       | measured >= 10000 | yes  |
| Redis drain vs 0.1.1                         | 11,609 ev/s | 399 ev/s (0.1.1 on 100 events)     | 29.08 | ratio >= 30       | NO   |
| publish_event cost                           | 445 µs/ev   | 411 µs/ev (bare create)            | 1.08  | ratio <= 1.2      | yes  |
| commit to Redis at 200 ev/s, p50             | 4.47 ms     |                                    |       | measured <= 20    | yes  |
| cores busy with 2 workers                    | 1.83 cores  | 2 cores (all)                      | 0.92  |                   |      |
| worker RSS growth                            | 69.5 MiB    | 69.5 MiB (after 1/10)              | 1.00  | ratio < 1.1       | yes  |

Failed (see the messages above): kafka
"""  # noqa: E501


def test_the_table_printed_at_ec70c10_is_read_row_by_row() -> None:
    assert parse_table(PRINTED) == {
        "Redis drain, 1 worker": Reading(11_609, "ev/s", ">="),
        "Redis drain vs 0.1.1": Reading(11_609, "ev/s", ">="),
        "publish_event cost": Reading(445, "µs/ev", "<="),
        "commit to Redis at 200 ev/s, p50": Reading(4.47, "ms", "<="),
        "cores busy with 2 workers": Reading(1.83, "cores", ""),
        "worker RSS growth": Reading(69.5, "MiB", "<"),
    }


def test_what_format_table_prints_now_reads_back() -> None:
    figures = [
        Figure("drain", 25_000.4, "ev/s", 200, "0.1.1", Goal(">=", 30)),
        Figure("p50", 0.012345, "ms", goal=Goal("<", 20, "measured")),
    ]
    assert parse_table(format_table(figures)) == {
        "drain": Reading(25_000, "ev/s", ">="),
        "p50": Reading(0.0123, "ms", "<"),
    }


@pytest.mark.parametrize(
    ("unit", "comparison", "expected"),
    [
        ("ev/s", "", "higher"),
        ("ev/s", "<=", "higher"),  # the unit decides before the goal
        ("ms", "", "lower"),
        ("µs/ev", "<=", "lower"),
        ("MiB", "", "lower"),
        ("cores", "", None),
        ("cores", ">=", "higher"),
        ("rows", "<", "lower"),
    ],
)
def test_which_way_is_better_comes_from_the_unit_then_the_goal(
    unit: str, comparison: str, expected: str | None
) -> None:
    assert better(unit, comparison) == expected


@pytest.mark.parametrize(
    ("ratio", "direction", "expected"),
    [
        (0.951, "higher", True),
        (0.949, "higher", False),
        (1.5, "higher", True),
        (1.049, "lower", True),
        (1.051, "lower", False),
        (0.5, "lower", True),
        (0.96, None, True),
        (1.04, None, True),
        (0.94, None, False),
        (1.06, None, False),
    ],
)
def test_within_tolerance_means_no_more_than_5_percent_worse(
    ratio: float, direction: str | None, expected: bool
) -> None:
    assert within_tolerance(ratio, direction) is expected  # type: ignore[arg-type]


def test_the_ratio_is_the_median_of_each_round_s_ratio_not_of_the_medians() -> None:
    comparison = Comparison("drain", "ev/s", "higher", (100, 200, 300), (110, 180, 330))
    assert comparison.ratios == pytest.approx([1.1, 0.9, 1.1])
    assert comparison.within  # the ratio of the medians, 180 / 200, would say no
    assert "| 1.100    | 0.900-1.100 |" in format_comparisons([comparison])


def test_a_round_where_ref_measured_zero_has_no_ratio() -> None:
    assert Comparison("x", "ms", "lower", (0, 2), (1, 2)).ratios == [1.0]


def test_the_trees_take_turns_at_going_first() -> None:
    assert [round_order(index) for index in range(3)] == [
        ("REF", "HEAD"),
        ("HEAD", "REF"),
        ("REF", "HEAD"),
    ]


def test_summarize_collects_each_figure_s_rounds_in_the_order_printed() -> None:
    ref = [{"a": Reading(10, "ms", "<="), "b": Reading(5, "ev/s")}] * 2
    head = [
        {"a": Reading(10.3, "ms", "<="), "b": Reading(4, "ev/s")},
        {"a": Reading(10.5, "ms", "<="), "b": Reading(4, "ev/s")},
    ]
    a, b = summarize(ref, head)
    assert a == Comparison("a", "ms", "lower", (10, 10), (10.3, 10.5))
    assert a.within  # 3% and 5% slower: 4% in the median
    assert b == Comparison("b", "ev/s", "higher", (5, 5), (4, 4))
    assert not b.within


def test_a_figure_only_one_tree_printed_is_named_and_not_within() -> None:
    only_head = summarize([{}], [{"new": Reading(3, "ev/s")}])
    assert only_head == [Comparison("new", "ev/s", "higher", (), (3,))]
    assert not only_head[0].within
    row = format_comparisons(only_head).splitlines()[-1]
    assert row.split("|")[4].strip() == "only in HEAD"
    assert row.split("|")[7].strip() == "NO"


def test_this_tree_runs_its_own_packages() -> None:
    check_own_code("HEAD", ROOT)


def test_a_tree_without_the_packages_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="would not import its own packages"):
        check_own_code("REF", tmp_path)
