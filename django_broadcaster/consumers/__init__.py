"""Consuming events: an inbox that handles each event once, and loops that read the brokers.

- :mod:`.inbox`: the :class:`~.inbox.InboxEntry` table, :func:`~.inbox.receive` and
  :func:`~.inbox.process_once`, for any consumer;
- :mod:`.decoding`: messages back into :class:`~django_broadcaster.events.CloudEvent` values;
- :mod:`.processing`: running the registry's handlers with the inbox, retries and dead letters;
- :mod:`.base`, :mod:`.redis`, :mod:`.kafka`: the consumer loops behind the ``consume_redis`` and
  ``consume_kafka`` commands.

Nothing is imported here: :mod:`django_broadcaster.models` imports :mod:`.inbox` while Django
loads models, before the broker clients are needed.
"""
