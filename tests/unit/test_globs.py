"""Event-type patterns: matching, one covering another, two overlapping."""

import pytest

from django_broadcaster.globs import covers, matches, overlap


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("order.created", "order.created", True),
        ("order.created", "order.created.v2", False),
        ("order.*", "order.created", True),
        ("order.*", "order.", True),
        ("order.*", "orders.created", False),
        ("*.created", "user.created", True),
        ("*", "anything", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "aXc", False),
        ("order.[x]", "order.x", False),  # only '*' is special
    ],
)
def test_matches(pattern: str, event_type: str, expected: bool) -> None:
    assert matches(pattern, event_type) is expected


@pytest.mark.parametrize(
    ("pattern", "other", "expected"),
    [
        ("order.*", "order.created", True),
        ("order.*", "order.*", True),
        ("order.*", "order.paid.*", True),
        ("*", "order.*", True),
        ("order.created", "order.*", False),
        ("order.*", "*.created", False),
        ("*ab*", "*a*b*", False),
    ],
)
def test_covers(pattern: str, other: str, expected: bool) -> None:
    assert covers(pattern, other) is expected


@pytest.mark.parametrize(
    ("pattern", "other", "expected"),
    [
        ("order.*", "*.created", True),
        ("order.*", "user.*", False),
        ("*.created", "*.paid", False),
        ("order.*", "order.created", True),
        ("user.created", "order.*", False),
        ("a*b", "ab*", True),
    ],
)
def test_overlap_is_symmetric_and_exact(pattern: str, other: str, expected: bool) -> None:
    assert overlap(pattern, other) is expected
    assert overlap(other, pattern) is expected
