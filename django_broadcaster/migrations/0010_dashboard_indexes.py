"""Two partial indexes for the admin's dashboard: published rows by ``published_at``, failed
rows by ``scheduled_at`` (when the worker recorded them failed).

The dashboard reads the last hour's published rows and the failed rows; without these it would
read the whole table, which keeps every published event until ``outbox_cleanup`` deletes it.
An insert (a pending row) matches neither condition, so publishing writes no entry in them. A
worker's "published" update, which is never HOT (``status`` is in the due index's condition),
writes one more entry, at the index's right-hand end; failing an event writes one in the other.

Building the published index reads every published row, and a plain ``CREATE INDEX`` blocks
writes to the table meanwhile: on a large outbox run ``outbox_cleanup`` first, or create the
two indexes ``CONCURRENTLY`` by hand (the SQL: ``manage.py sqlmigrate django_broadcaster 0010``)
and then ``migrate --fake django_broadcaster 0010``.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_broadcaster", "0009_delivery_state"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(status="published"),
                fields=["published_at"],
                name="outbox_published_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(status="failed"),
                fields=["scheduled_at"],
                name="outbox_failed_idx",
            ),
        ),
    ]
