"""The public API: the names in ``django_broadcaster.__all__``, and every path 0.1.1 offered."""

import importlib
import subprocess
import sys

import pytest
from django.apps import apps

import django_broadcaster

#: Every name 0.1.1's modules defined for users, by module (from its wheel's source).
PATHS_0_1_1 = {
    "django_broadcaster.admin": ["OutboxEventAdmin"],
    "django_broadcaster.apps": ["DjangoBroadcasterConfig"],
    "django_broadcaster.backends": ["PublisherBackend", "RedisStreamBackend"],
    "django_broadcaster.events": ["CloudEvent"],
    "django_broadcaster.models": ["OutboxEvent", "OutboxEventStatus"],
    "django_broadcaster.publishers": ["OutboxPublisher", "publisher"],
    "django_broadcaster.registry": [
        "EventHandlerRegistry",
        "event_created",
        "event_published",
        "event_registry",
    ],
}


@pytest.mark.parametrize("module", sorted(PATHS_0_1_1))
def test_every_name_0_1_1_offered_still_imports(module: str) -> None:
    loaded = importlib.import_module(module)
    missing = [name for name in PATHS_0_1_1[module] if not hasattr(loaded, name)]
    assert missing == []


def test_0_1_1_names_are_the_new_ones() -> None:
    from django_broadcaster.backends import BaseBackend, PublisherBackend
    from django_broadcaster.models import OutboxEventStatus, Status
    from django_broadcaster.publishers import OutboxPublisher, Publisher
    from django_broadcaster.registry import EventHandlerRegistry, EventRegistry

    assert (PublisherBackend, OutboxEventStatus) == (BaseBackend, Status)
    assert (OutboxPublisher, EventHandlerRegistry) == (Publisher, EventRegistry)
    assert type(apps.get_app_config("django_broadcaster")).__name__ == "BroadcasterConfig"


@pytest.mark.parametrize("name", django_broadcaster.__all__)
def test_each_public_name_is_importable_from_the_package(name: str) -> None:
    value = getattr(django_broadcaster, name)
    assert value is not None
    assert name in dir(django_broadcaster)


def test_the_message_bus_names_are_public() -> None:
    from django_broadcaster.bus import ahandle, handle
    from django_broadcaster.commands import Command
    from django_broadcaster.exceptions import PredicateFailed

    public = (django_broadcaster.Command, django_broadcaster.handle, django_broadcaster.ahandle)
    assert public == (Command, handle, ahandle)
    assert django_broadcaster.PredicateFailed is PredicateFailed


def test_all_lists_every_public_name_once() -> None:
    assert sorted(django_broadcaster.__all__) == sorted(["__version__", *django_broadcaster._HOMES])


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'claim'"):
        django_broadcaster.claim  # noqa: B018


def test_importing_the_package_imports_no_model() -> None:
    # INSTALLED_APPS imports the package before Django is ready: it must not touch models.
    code = (
        "import django_broadcaster, sys; print('django_broadcaster.outbox.models' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
