"""The lease moves from ``scheduled_at`` to its own column, ``leased_until``, which no index holds.

Taking and giving back a lease then changes no indexed column, so on PostgreSQL both are HOT
updates, provided the row's page has room for the row's new version. A claim leases every row of
a page in one transaction, so a page needs room for as many new versions as it has rows: the
outbox's pages are filled to half on insert (``fillfactor``; it applies to pages written from
now on), which makes every lease of 1 KB events HOT (docs/performance.md).

Rows leased by a worker of an earlier version keep their lease in ``scheduled_at`` (with
``leased_until`` empty) and become due when it runs out, as before. Stop the old workers before
starting new ones: an old worker does not see the new workers' leases.
"""

from django.db import migrations, models

FILLFACTOR = 50


def _outbox_table(apps, schema_editor):
    model = apps.get_model("django_broadcaster", "OutboxEvent")
    return schema_editor.quote_name(model._meta.db_table)


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table = _outbox_table(apps, schema_editor)
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table = _outbox_table(apps, schema_editor)
        schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("django_broadcaster", "0006_notify_trigger"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="leased_until",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="A worker holds the event until then.",
                null=True,
            ),
        ),
        migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False),
    ]
