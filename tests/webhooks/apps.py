"""The webhook tests' handlers as a Django app, for the receiver that gunicorn serves.

The receiver starts with ``TEST_EXTRA_APPS='["tests.webhooks"]'`` (read by ``tests/settings.py``);
:meth:`WebhooksConfig.ready` then imports :mod:`tests.webhooks.handlers`.
"""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "tests.webhooks"
    label = "webhook_tests"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers the receiver's handlers)
