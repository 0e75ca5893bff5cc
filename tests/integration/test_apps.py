"""At start-up the app imports each installed app's ``handlers`` module."""

import sys
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings

from django_broadcaster.registry import event_registry

MODULE = "tests.autodiscovered.handlers"


@pytest.fixture
def forget_autodiscovered() -> Iterator[None]:
    """Unregister the autodiscovered handler and unload its module afterwards."""
    yield
    module = sys.modules.pop(MODULE, None)
    if module is not None:
        event_registry.unregister(module.on_autodiscovered, "tests.autodiscovered")


@pytest.mark.usefixtures("forget_autodiscovered")
def test_ready_registers_the_handlers_of_installed_apps() -> None:
    assert MODULE not in sys.modules
    with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "tests.autodiscovered"]):
        handlers = event_registry.handlers_for("tests.autodiscovered")
    assert list(handlers) == [f"handler:{MODULE}.on_autodiscovered"]
