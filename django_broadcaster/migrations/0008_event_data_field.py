"""``data`` becomes an ``EventDataField``: a change in Python only.

The new field writes JSON the publisher has already encoded, instead of encoding it again. The
column stays what it was on every database, so the migration changes only Django's record of the
model (without it, SQLite would copy the whole outbox into a new table for nothing).
"""

from django.db import migrations

import django_broadcaster.outbox.models


class Migration(migrations.Migration):
    dependencies = [
        ("django_broadcaster", "0007_leased_until"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="outboxevent",
                    name="data",
                    field=django_broadcaster.outbox.models.EventDataField(blank=True, null=True),
                ),
            ],
        ),
    ]
