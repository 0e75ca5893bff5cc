"""The pytest plugin of django-broadcaster, loaded through the ``pytest11`` entry point.

It provides the ``broadcaster_events`` fixture. Nothing Django-related is imported until the
fixture is used, because pytest loads plugins before Django is set up. Disable the plugin with
``-p no:django_broadcaster``.
"""

from __future__ import annotations

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
