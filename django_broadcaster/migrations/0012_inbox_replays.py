"""Dead letters count their failed attempts and remember their last replay (``consume_replay``).

Two nullable-or-defaulted columns on the inbox: existing rows get ``attempts`` 0 (not recorded)
and no ``replayed_at``; on PostgreSQL 11 and later neither rewrites a row.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_broadcaster", "0011_priority"),
    ]

    operations = [
        migrations.AddField(
            model_name="inboxentry",
            name="attempts",
            field=models.PositiveIntegerField(
                default=0,
                help_text=(
                    "Failed entries: how often the handlers failed on it, the consumer's "
                    "attempts and each replay's (0: not recorded)."
                ),
            ),
        ),
        migrations.AddField(
            model_name="inboxentry",
            name="replayed_at",
            field=models.DateTimeField(
                blank=True, help_text="When the entry was last replayed.", null=True
            ),
        ),
    ]
