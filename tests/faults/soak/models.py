"""What the consumers' handlers record: one row per handler run, in the handler's transaction.

No unique constraint on purpose: a second run for one event must show as a second row, so that
the checker counts how often the inbox let the handler run. The app has no migrations; the soak
creates the table with ``migrate --run-syncdb``.
"""

from django.db import models


class Handled(models.Model):
    event_id = models.UUIDField(db_index=True)
    event_type = models.CharField(max_length=64)
    partition_key = models.CharField(max_length=64)
