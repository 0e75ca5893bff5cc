"""A command has exactly one handler: ``manage.py check`` says so when it has none, or two."""

from dataclasses import dataclass
from typing import ClassVar

import pytest
from django.core.checks import Error

from django_broadcaster.checks import check_commands, command_errors
from django_broadcaster.commands import Command
from django_broadcaster.registry import EventRegistry


@dataclass(frozen=True)
class ShipOrder(Command):
    event_type: ClassVar[str] = "tests.checks.ship_order"
    source: ClassVar[str] = "tests"
    order_id: int


def ship(command: ShipOrder) -> None:
    """A handler of ShipOrder."""


def ship_too(command: ShipOrder) -> None:
    """Another handler of ShipOrder: one too many."""


def ids(registry: EventRegistry) -> list[str]:
    return [message.id or "" for message in command_errors([ShipOrder], registry)]


def test_a_command_with_one_handler_is_clean() -> None:
    registry = EventRegistry()
    registry.register(ShipOrder)(ship)
    registry.register()(ship_too)  # a catch-all never gets a command: not its handler
    assert ids(registry) == []


def test_a_command_without_a_handler_is_an_error() -> None:
    [error] = command_errors([ShipOrder], EventRegistry())
    assert isinstance(error, Error) and error.id == "django_broadcaster.E010"
    assert "tests.unit.test_checks_commands.ShipOrder has no handler" in error.msg
    assert error.obj is ShipOrder


def test_a_command_with_two_handlers_is_an_error_naming_both() -> None:
    registry = EventRegistry()
    registry.register(ShipOrder)(ship)
    registry.register(ShipOrder)(ship_too)
    [error] = command_errors([ShipOrder], registry)
    assert error.id == "django_broadcaster.E011"
    assert "handler:tests.unit.test_checks_commands.ship," in error.msg
    assert "handler:tests.unit.test_checks_commands.ship_too" in error.msg


def test_a_handler_registered_by_the_type_counts_too() -> None:
    registry = EventRegistry()
    registry.register(ShipOrder)(ship)
    registry.register(ShipOrder.event_type)(ship_too)
    assert ids(registry) == ["django_broadcaster.E011"]


def test_the_registered_check_covers_the_commands_of_installed_apps_only() -> None:
    # ShipOrder lives in a test module, not an installed app: the project's check ignores it.
    assert check_commands() == []


def test_a_command_handler_takes_no_predicate() -> None:
    with pytest.raises(TypeError, match="ShipOrder is a command"):
        EventRegistry().register(ShipOrder, when=lambda command: True)(ship)
