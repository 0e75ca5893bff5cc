"""On PostgreSQL, every insert into the outbox sends NOTIFY on a channel named after the table.

The trigger runs once per statement, inside the inserting transaction: the notification reaches the
listening workers only when that transaction commits, and PostgreSQL folds the identical
notifications of one transaction into one. Other databases get nothing; their workers poll.
"""

from django.db import migrations

FUNCTION = "broadcaster_notify_new_events"
CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_NAME, '');
    RETURN NULL;
END
$$
"""


def _table(apps, schema_editor):
    model = apps.get_model("django_broadcaster", "OutboxEvent")
    return schema_editor.quote_name(model._meta.db_table)


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION)
    schema_editor.execute(
        f"CREATE TRIGGER {FUNCTION} AFTER INSERT ON {_table(apps, schema_editor)} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {FUNCTION} ON {_table(apps, schema_editor)}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [
        ("django_broadcaster", "0005_inbox"),
    ]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
    ]
