"""The dead-letter rules: which alias takes a failure, what the dead letter carries, and the
system checks that refuse a ``DEAD_LETTER`` that could not work."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.checks import check_settings
from django_broadcaster.conf import get_settings
from django_broadcaster.dead_letters import (
    EXTENSIONS,
    MAX_ERROR_LENGTH,
    dead_letter_aliases,
    dead_letter_event,
    dead_letter_for,
)
from django_broadcaster.events import CloudEvent

LOCMEM = "django_broadcaster.backends.LocMemBackend"


def backend(dead_letter: object = None) -> dict[str, Any]:
    config: dict[str, Any] = {"BACKEND": LOCMEM}
    if dead_letter is not None:
        config["DEAD_LETTER"] = dead_letter
    return config


def ids(backends: dict[str, Any], routes: list[dict[str, Any]] | None = None) -> list[str]:
    broadcaster: dict[str, Any] = {"BACKENDS": backends}
    if routes is not None:
        broadcaster["ROUTES"] = routes
    with override_settings(BROADCASTER=broadcaster):
        return [message.id or "" for message in check_settings()]


@pytest.mark.parametrize(
    ("backends", "routes", "expected"),
    [
        ({"a": backend("dead"), "dead": backend()}, None, []),
        ({"a": backend(""), "dead": backend()}, None, ["django_broadcaster.E060"]),
        ({"a": backend(["dead"]), "dead": backend()}, None, ["django_broadcaster.E060"]),
        ({"a": backend("nowhere")}, None, ["django_broadcaster.E061"]),
        ({"a": backend("handler:shop.handlers.on_paid")}, None, ["django_broadcaster.E061"]),
        ({"a": backend("a")}, None, ["django_broadcaster.E062"]),
        (
            {"a": backend("b"), "b": backend("c"), "c": backend()},
            None,
            ["django_broadcaster.E063"],
        ),
        (
            {"a": backend("b"), "b": backend("a")},
            None,
            ["django_broadcaster.E063", "django_broadcaster.E063"],
        ),
        (
            {"a": backend(), "dead": backend()},
            [{"TYPES": "order.*", "BACKENDS": ["a"], "DEAD_LETTER": "dead"}],
            [],
        ),
        (
            {"a": backend()},
            [{"TYPES": "order.*", "BACKENDS": ["a"], "DEAD_LETTER": "gone"}],
            ["django_broadcaster.E061"],
        ),
        (
            {"a": backend()},
            [{"TYPES": "order.*", "BACKENDS": ["a"], "DEAD_LETTER": 3}],
            ["django_broadcaster.E050"],
        ),
        (
            {"a": backend("dead"), "dead": backend()},
            [{"TYPES": "order.*", "BACKENDS": ["a", "dead"]}],
            ["django_broadcaster.W060"],
        ),
        (
            {"a": backend(), "b": backend("c"), "c": backend()},
            [{"TYPES": "order.*", "BACKENDS": ["a"], "DEAD_LETTER": "b"}],
            ["django_broadcaster.E063"],
        ),
    ],
)
def test_dead_letter_settings_are_checked(
    backends: dict[str, Any], routes: list[dict[str, Any]] | None, expected: list[str]
) -> None:
    assert ids(backends, routes) == expected


def test_a_check_message_names_the_backend_and_the_fix() -> None:
    with override_settings(BROADCASTER={"BACKENDS": {"orders": backend("dlq")}}):
        [message] = check_settings()
    assert "BACKENDS\"]['orders'] has DEAD_LETTER 'dlq', not configured" in message.msg
    assert "Dead letters" in (message.hint or "")


def test_the_route_wins_over_the_backend_and_dead_letters_are_not_sent_on() -> None:
    backends = {"a": backend("dead"), "dead": backend(), "audit": backend()}
    routes = [{"TYPES": "audit.*", "BACKENDS": ["a"], "DEAD_LETTER": "audit"}]
    with override_settings(BROADCASTER={"BACKENDS": backends, "ROUTES": routes}):
        config = get_settings()
        order = CloudEvent(event_type="order.paid", source="/shop")
        audit = CloudEvent(event_type="audit.read", source="/shop")
        assert dead_letter_for(order, "a", config) == "dead"
        assert dead_letter_for(audit, "a", config) == "audit"
        assert dead_letter_for(audit, "handler:shop.on_read", config) == "audit"
        assert dead_letter_for(order, "handler:shop.on_paid", config) is None
        assert dead_letter_for(audit, "audit", config) is None  # a dead letter's own failure
        assert dead_letter_aliases(config) == {"dead", "audit"}


def test_the_dead_letter_is_the_event_with_the_failure_attached() -> None:
    event = CloudEvent(
        event_type="order.paid",
        source="/shop",
        data={"id": 1},
        extensions={"partitionkey": "order-1"},
    )
    error = "EventRejected:\x00 refused\n" + "x" * 2000
    letter = dead_letter_event(event, "kafka", 6, error, max_retries=5)
    assert (letter.id, letter.source, letter.data) == (event.id, "/shop", {"id": 1})
    assert letter.extensions["partitionkey"] == "order-1"
    assert letter.extensions["deadletterreason"] == "retriesexhausted"
    assert letter.extensions["deadletterdest"] == "kafka"
    assert letter.extensions["deadletterattempts"] == 6
    text = str(letter.extensions["deadlettererror"])
    assert text.startswith("EventRejected: refused x") and len(text) == MAX_ERROR_LENGTH
    assert all(len(name) <= 20 and name.isalnum() and name.islower() for name in EXTENSIONS)
