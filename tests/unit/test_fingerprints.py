"""Failures group by destination, error class and the message with its values taken out."""

import pytest

from django_broadcaster.fingerprints import FailureKind, error_class, failure_kind, normalise


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("order 123 missing", "order <n> missing"),
        ("order 4.5 missing", "order <n> missing"),
        ("no row 0f8fad5b-d9cb-469f-a165-70867728950e", "no row <uuid>"),
        ("no row 0F8FAD5B-D9CB-469F-A165-70867728950E", "no row <uuid>"),
        ("object at 0x7f3a2c1b9d10 gone", "object at <hex> gone"),
        ("commit 9f86d081884c7d65 refused", "commit <hex> refused"),
        ("key 'order_id'", "key <str>"),
        ('field "email" is bad', "field <str> is bad"),
        ("at 2026-12-07T14:50:03.125+01:00 down", "at <time> down"),
        ("at 2026-12-07 14:50:03Z down", "at <time> down"),
        ("on 2026-12-07 only", "on <time> only"),
        ("  too   large\n(over 1 MB) ", "too large (over <n> MB)"),
        ("v2 of order-7 failed", "v2 of order-<n> failed"),
        ("deadbeef is a word", "deadbeef is a word"),
        ("", ""),
    ],
)
def test_normalise_replaces_values_with_placeholders(message: str, normalised: str) -> None:
    assert normalise(message) == normalised


def test_the_error_class_is_the_text_before_the_first_colon() -> None:
    assert error_class("KeyError: 'order_id'") == "KeyError"
    assert error_class("unavailable: Backend 'kafka': down: refused") == "unavailable"
    assert error_class("no class here") == ""
    assert error_class("") == ""


def test_failures_that_differ_only_in_values_share_a_fingerprint() -> None:
    first = failure_kind("kafka", "EventRejected: order 123 missing")
    second = failure_kind("kafka", "EventRejected: order 456 missing")
    assert first == second == FailureKind("kafka", "EventRejected", "order <n> missing")
    assert first.fingerprint == second.fingerprint
    assert len(first.fingerprint) == 12 and int(first.fingerprint, 16) >= 0


@pytest.mark.parametrize(
    "other",
    [
        ("redis", "EventRejected: order 1 missing"),
        ("kafka", "ValueError: order 1 missing"),
        ("kafka", "EventRejected: order 1 late"),
    ],
)
def test_destination_class_and_message_each_tell_groups_apart(other: tuple[str, str]) -> None:
    assert failure_kind("kafka", "EventRejected: order 1 missing").fingerprint != (
        failure_kind(*other).fingerprint
    )


def test_a_message_without_a_class_keeps_its_whole_text() -> None:
    assert failure_kind("", "set failed by hand") == FailureKind("", "", "set failed by hand")
