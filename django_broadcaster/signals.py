"""Signals sent around an event's life. Each sends ``sender=OutboxEvent`` and ``event=``.

- ``event_created``: a row was written by the publisher (``event`` is the row), as in 0.1.1.
- ``event_published``: the worker recorded an event as delivered everywhere (``event`` is the
  :class:`~django_broadcaster.events.CloudEvent`).
- ``event_failed``: the worker gave up on an event after its retries (``event`` is the
  CloudEvent; ``error`` is its ``last_error``).
"""

from django.dispatch import Signal

event_created = Signal()
event_published = Signal()
event_failed = Signal()
