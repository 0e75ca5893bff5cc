"""The pytest plugin of django-broadcaster, loaded through the ``pytest11`` entry point.

It provides the ``broadcaster_events`` fixture, and empties ``locmem.outbox`` (the events
:class:`~django_broadcaster.backends.LocMemBackend` delivered) before each test, as Django empties
``mail.outbox``. Nothing Django-related is imported until a fixture needs it, because pytest
loads plugins before Django is set up. Disable the plugin with ``-p no:django_broadcaster``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import CapturedEvents


@pytest.fixture
def broadcaster_events() -> Iterator[CapturedEvents]:
    """Yield the events published during the test (see ``django_broadcaster.testing``)."""
    from .testing import captured_events

    with captured_events() as events:
        yield events


@pytest.fixture(autouse=True)
def _broadcaster_locmem_outbox_emptied() -> None:
    """Empty ``django_broadcaster.backends.locmem.outbox`` before each test."""
    locmem = sys.modules.get("django_broadcaster.backends.locmem")
    if locmem is not None:  # else it was never imported: nothing was delivered to it
        locmem.outbox.clear()
