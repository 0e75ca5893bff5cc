"""The drills as a Django app, so that a worker subprocess can load their handlers.

A drill starts its worker with ``TEST_EXTRA_APPS='["tests.faults"]'`` (read by
``tests/settings.py``); :meth:`FaultsConfig.ready` then imports :mod:`tests.faults.handlers`.
"""

from django.apps import AppConfig


class FaultsConfig(AppConfig):
    name = "tests.faults"
    label = "faults"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers the drills' handlers)
