"""Routes: the first matching rule decides, and ``manage.py check`` reports bad ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from django_broadcaster.checks import check_settings
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BroadcasterImproperlyConfigured
from django_broadcaster.routing import apply_route, route_for

LOCMEM = {"BACKEND": "django_broadcaster.backends.LocMemBackend"}
BACKENDS = {"orders": LOCMEM, "users": LOCMEM, "audit": LOCMEM}


def from_billing(event: CloudEvent) -> bool:
    return event.source.startswith("/billing")


def routed(*rules: dict[str, object]) -> override_settings:
    return override_settings(BROADCASTER={"BACKENDS": BACKENDS, "ROUTES": list(rules)})


def ids(*rules: object) -> list[str]:
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS, "ROUTES": list(rules)}):
        return [message.id or "" for message in check_settings()]


def test_the_first_matching_rule_decides() -> None:
    with routed(
        {"TYPES": "order.refunded", "BACKENDS": ["audit"]},
        {"TYPES": ["order.*", "cart.*"], "BACKENDS": ["orders"]},
        {"WHEN": from_billing, "BACKENDS": ["audit", "users"]},
    ):
        assert route_for(CloudEvent("order.refunded", "/shop")).backends == ("audit",)
        assert route_for(CloudEvent("order.paid", "/shop")).backends == ("orders",)
        assert route_for(CloudEvent("cart.emptied", "/shop")).backends == ("orders",)
        assert route_for(CloudEvent("invoice.sent", "/billing/x")).backends == ("audit", "users")
        assert route_for(CloudEvent("user.created", "/shop")) is None


def test_types_and_when_together_must_both_hold() -> None:
    path = "tests.unit.test_routing.from_billing"
    with routed({"TYPES": "invoice.*", "WHEN": path, "BACKENDS": ["audit"]}):
        assert route_for(CloudEvent("invoice.sent", "/billing")) is not None
        assert route_for(CloudEvent("invoice.sent", "/shop")) is None
        assert route_for(CloudEvent("order.paid", "/billing")) is None


def test_the_call_wins_over_the_route_and_the_route_fills_the_rest() -> None:
    rule = {"TYPES": "order.*", "BACKENDS": ["orders"], "MAX_RETRIES": 9, "PRIORITY": 7}
    with routed({**rule, "EXPIRES_AFTER": timedelta(hours=1)}):
        event = CloudEvent("order.paid", "/shop")
        route = route_for(event)
        assert route is not None
        routed_event, backends, retries, priority = apply_route(route, event, None, None, None)
        assert (backends, retries, priority) == (("orders",), 9, 7)
        assert routed_event.expires_at is not None
        assert apply_route(route, event, ["audit"], 2, -5)[1:] == (["audit"], 2, -5)


def test_an_events_own_expiry_wins_over_the_routes() -> None:
    with routed({"TYPES": "order.*", "BACKENDS": [], "EXPIRES_AFTER": timedelta(hours=1)}):
        event = CloudEvent("order.paid", "/s", extensions={"expirytime": "2030-01-01T00:00:00Z"})
        route = route_for(event)
        assert route is not None
        assert apply_route(route, event, None, None, None)[0] is event


def test_malformed_routes_fail_the_publish_too() -> None:
    with (
        routed({"TYPES": "order.*", "BACKENDS": ["nowhere"]}),
        pytest.raises(BroadcasterImproperlyConfigured, match="'nowhere'"),
    ):
        route_for(CloudEvent("order.paid", "/shop"))


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([{"TYPES": "order.*", "BACKENDS": ["orders"]}], []),
        ([{"TYPES": "order.*", "WHEN": from_billing, "BACKENDS": []}], []),
        (["order.*"], ["django_broadcaster.E050"]),
        ([{"TYPES": "order.*"}], ["django_broadcaster.E050"]),
        ([{"BACKENDS": ["orders"]}], ["django_broadcaster.E050"]),
        ([{"TYPES": "order.*", "BACKENDS": "orders"}], ["django_broadcaster.E050"]),
        ([{"TYPES": "order.?", "BACKENDS": ["orders"]}], ["django_broadcaster.E050"]),
        ([{"TYPES": "", "BACKENDS": ["orders"]}], ["django_broadcaster.E050"]),
        (
            [{"TYPE": "order.*", "BACKENDS": ["orders"]}],  # unknown key, and no TYPES
            ["django_broadcaster.E050", "django_broadcaster.E050"],
        ),
        ([{"WHEN": "nowhere.at_all", "BACKENDS": ["orders"]}], ["django_broadcaster.E050"]),
        ([{"WHEN": 3, "BACKENDS": ["orders"]}], ["django_broadcaster.E050"]),
        (
            [{"TYPES": "a", "BACKENDS": [], "MAX_RETRIES": -1, "PRIORITY": 101}],
            ["django_broadcaster.E050", "django_broadcaster.E050"],
        ),
        (
            [{"TYPES": "a", "BACKENDS": [], "EXPIRES_AFTER": 60}],
            ["django_broadcaster.E050"],
        ),
        (
            [{"TYPES": "a", "BACKENDS": [], "RETRY_BASE_DELAY": timedelta(0)}],
            ["django_broadcaster.E050"],
        ),
        ([{"TYPES": "order.*", "BACKENDS": ["ordres"]}], ["django_broadcaster.E051"]),
        (
            [{"TYPES": "order.*", "BACKENDS": []}, {"TYPES": "order.paid", "BACKENDS": []}],
            ["django_broadcaster.E052"],
        ),
        (
            [{"TYPES": "*", "BACKENDS": []}, {"WHEN": from_billing, "BACKENDS": []}],
            ["django_broadcaster.E052"],
        ),
        (
            [{"TYPES": "order.paid", "BACKENDS": []}, {"TYPES": "order.*", "BACKENDS": []}],
            [],
        ),
        (
            [
                {"TYPES": "order.*", "WHEN": from_billing, "BACKENDS": []},
                {"TYPES": "order.paid", "BACKENDS": []},
            ],
            [],
        ),
        (
            [{"TYPES": "order.*", "BACKENDS": []}, {"TYPES": "*.created", "BACKENDS": []}],
            ["django_broadcaster.W050"],
        ),
    ],
)
def test_route_checks_have_ids(rules: list[object], expected: list[str]) -> None:
    assert ids(*rules) == expected


def test_routes_must_be_a_list() -> None:
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS, "ROUTES": {"order.*": "x"}}):
        assert [m.id for m in check_settings()] == ["django_broadcaster.E001"]


def test_the_messages_name_the_rule_and_what_wins() -> None:
    with routed(
        {"TYPES": "order.*", "BACKENDS": []},
        {"TYPES": "*.created", "BACKENDS": []},
        {"TYPES": "order.paid", "BACKENDS": []},
    ):
        messages = [m.msg for m in check_settings()]
    assert any("rule 3 (order.paid) can never match" in m for m in messages), messages
    assert any("rules 1 ('order.*') and 2 ('*.created') overlap" in m for m in messages), messages
