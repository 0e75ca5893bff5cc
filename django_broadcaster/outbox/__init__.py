"""The outbox's storage: the table, and every write a worker makes to it.

- :mod:`.models`: the :class:`~.models.OutboxEvent` row, its queries and its column types;
- :mod:`.leases`: claiming due rows for a worker, and giving them back;
- :mod:`.outcomes`: recording what a delivery attempt did to each row;
- :mod:`.deliveries`: where each event stands with each destination, for the admin and status;
- :mod:`.bulk`, :mod:`.retention`, :mod:`.health`: many rows in, old rows out, the state at a
  glance.

The worker, the publisher, the admin and the commands change outbox rows only through these
modules.
"""
