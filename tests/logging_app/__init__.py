"""An app whose handler logs through a logger of its own, as a project's handler would.

Worker subprocesses install it with ``TEST_EXTRA_APPS`` (``tests/settings.py``). The event type
is defined here, so that a test can name it without importing :mod:`.handlers`, which would
register the handler in the test process too.
"""

ORDER_TYPE = "tests.logging.order"
