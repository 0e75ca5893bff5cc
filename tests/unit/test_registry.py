"""The handler registry: types, catch-alls, stacking and stable destination names."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from django_broadcaster.commands import Command
from django_broadcaster.events import CloudEvent
from django_broadcaster.registry import EventRegistry


def handler(event: CloudEvent) -> None:
    """A module-level handler."""


def test_handlers_for_returns_typed_handlers_then_catch_alls() -> None:
    registry = EventRegistry()
    everything = registry.register()(lambda event: None)
    registry.register("a")(handler)
    assert list(registry.handlers_for("a").values()) == [handler, everything]
    assert list(registry.handlers_for("b").values()) == [everything]


def test_names_are_dotted_paths_and_unique() -> None:
    registry = EventRegistry()
    first: list[CloudEvent] = []
    second: list[CloudEvent] = []
    registry.register("a")(first.append)
    registry.register("a")(second.append)
    registry.register("a")(handler)
    names = list(registry.handlers_for("a"))
    assert names == [
        "handler:builtins.list.append",
        "handler:builtins.list.append#2",
        "handler:tests.unit.test_registry.handler",
    ]


def test_a_stacked_handler_keeps_one_name_and_registering_twice_is_a_no_op() -> None:
    registry = EventRegistry()
    registry.register("a")(registry.register("b")(handler))
    registry.register("a")(handler)
    assert list(registry.handlers_for("a")) == list(registry.handlers_for("b"))
    assert len(registry.handlers_for("a")) == 1


def test_unregister_and_clear() -> None:
    registry = EventRegistry()
    registry.register("a")(handler)
    registry.unregister(handler, "a")
    registry.unregister(handler, "a")
    assert registry.handlers_for("a") == {}
    registry.register()(handler)
    registry.clear()
    assert registry.handlers_for("a") == {}


def test_a_typed_event_class_registers_for_its_type() -> None:
    @dataclass
    class Shipped:
        event_type: ClassVar[str] = "order.shipped"
        order_id: int

    registry = EventRegistry()
    registry.register(Shipped)(handler)
    assert list(registry.handlers_for("order.shipped").values()) == [handler]


def test_a_class_without_event_type_cannot_be_registered() -> None:
    with pytest.raises(TypeError, match="names no CloudEvent type"):
        EventRegistry().register(dict)


def test_destinations_lists_each_handler_with_its_types() -> None:
    registry = EventRegistry()
    registry.register("b")(registry.register("a")(handler))
    everything = registry.register()(lambda event: None)
    assert registry.destinations() == {
        "handler:tests.unit.test_registry.handler": frozenset({"a", "b"}),
        f"handler:tests.unit.test_registry.{everything.__qualname__}": None,
    }


@dataclass(frozen=True)
class Created:
    event_type: ClassVar[str] = "order.created"
    order_id: int


@dataclass(frozen=True)
class Ship(Command):
    event_type: ClassVar[str] = "tests.registry.ship"
    source: ClassVar[str] = "tests"
    order_id: int


def ship(command: Ship) -> int:
    return command.order_id


def test_a_command_handler_gets_the_command_and_no_catch_all_gets_commands() -> None:
    registry = EventRegistry()
    registry.register(Ship)(ship)
    registry.register()(handler)
    [(name, call)] = registry.handlers_for("tests.registry.ship").items()
    assert name == "handler:tests.unit.test_registry.ship"
    assert call(CloudEvent("tests.registry.ship", "tests", {"order_id": 7})) == 7
    assert registry.destinations()[name] == frozenset({"tests.registry.ship"})


def test_a_command_handler_is_unregistered_by_its_function() -> None:
    registry = EventRegistry()
    registry.register(Ship)(ship)
    registry.register(Ship)(ship)  # again: a no-op
    assert len(registry.handlers_for("tests.registry.ship")) == 1
    registry.unregister(ship, "tests.registry.ship")
    assert registry.handlers_for("tests.registry.ship") == {}


def test_a_predicate_is_kept_by_name_and_gets_the_typed_instance() -> None:
    registry = EventRegistry()
    seen: list[object] = []
    registry.register(Created, when=seen.append)(handler)
    registry.register("other", when=lambda event: True)(ship)
    assert set(registry.predicates) == {
        "handler:tests.unit.test_registry.handler",
        "handler:tests.unit.test_registry.ship",
    }
    registry.predicates["handler:tests.unit.test_registry.handler"](
        CloudEvent("order.created", "tests", {"order_id": 1})
    )
    assert seen == [Created(order_id=1)]
    registry.clear()
    assert registry.predicates == {}
