"""An app for consumer subprocesses: its handlers register when Django loads it.

The event types are defined here, so that a test can name them without importing
:mod:`.handlers`, which would register the handlers in the test process too.
"""

ORDER_TYPE = "tests.consumer.order"
POISON_TYPE = "tests.consumer.poison"
HANDLED_TYPE = "tests.consumer.handled"
