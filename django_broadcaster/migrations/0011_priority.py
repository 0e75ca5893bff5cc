"""A ``priority`` per event, and the due index ordered by it: higher priority first, then the
earliest ``scheduled_at``, so that the claim still walks one index and stops at its batch.

Existing rows get priority 0, the default: on PostgreSQL 11 and later adding a column with a
constant default rewrites no row. The due index is dropped and built again with the new order;
``CREATE INDEX`` blocks writes to the table while it reads the pending rows, which are few on a
healthy outbox. On a large backlog, build it ``CONCURRENTLY`` by hand under another name (the SQL:
``manage.py sqlmigrate django_broadcaster 0011``), drop the old one, rename the new one to
``outbox_due_idx`` and then ``migrate --fake django_broadcaster 0011``.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_broadcaster", "0010_dashboard_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="priority",
            field=models.SmallIntegerField(
                default=0, help_text="Higher is claimed first when due."
            ),
        ),
        migrations.RemoveIndex(model_name="outboxevent", name="outbox_due_idx"),
        migrations.AddIndex(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(status="pending"),
                fields=["-priority", "scheduled_at"],
                name="outbox_due_idx",
            ),
        ),
    ]
