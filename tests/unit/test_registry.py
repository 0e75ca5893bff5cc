"""The handler registry: types, catch-alls, stacking and stable destination names."""

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
