"""Each destination's state moves into one structure, ``delivery``, in place of ``delivered``.

``delivery`` maps each destination to its entry: ``state`` (pending, delivered, rejected,
unavailable), ``attempts``, the last ``error`` and when the last attempt ended (``at``). 0.2.0
kept the destinations reached in the JSON list ``delivered`` and the others' errors in the text
``last_error`` ("dest: why; dest2: why"); this migration converts both, for rows written by
0.1.1 (through migration 0002) or 0.2.0, in place:

- a destination in ``delivered`` becomes ``delivered`` (one attempt: earlier ones are unknown);
- an error in ``last_error`` becomes ``rejected``, or ``unavailable`` when it reads as an outage,
  under the destination it names (configured backends, registered handlers and the row's own
  names are recognised); ``last_error`` itself is kept;
- a backend the publisher named (``backends``) and not yet tried becomes ``pending``, or
  ``delivered`` on a published row (0.1.1 kept no record of where its events went).

Rows with neither an error nor named backends (nearly all of a long-lived outbox: the published
history) are converted in one SQL statement on PostgreSQL and SQLite; the rest a batch at a time.
Stop every worker of the old version before migrating: it reads the column this drops.
"""

import re

from django.db import migrations, models

BATCH = 1000
_OUTAGE = ("unavailable: ", "backend paused", "still busy with a late call")

_SQL = {
    "postgresql": (
        "UPDATE {table} SET delivery = COALESCE((SELECT jsonb_object_agg(name, "
        '\'{{"state": "delivered", "attempts": 1}}\'::jsonb) '
        "FROM jsonb_array_elements_text(delivered) AS name), '{{}}'::jsonb) "
        "WHERE last_error = '' AND backends IS NULL AND jsonb_typeof(delivered) = 'array'"
    ),
    "sqlite": (
        "UPDATE {table} SET delivery = COALESCE((SELECT json_group_object(value, "
        'json(\'{{"state": "delivered", "attempts": 1}}\')) '
        "FROM json_each({table}.delivered)), '{{}}') "
        "WHERE last_error = '' AND backends IS NULL AND json_type(delivered) = 'array'"
    ),
}


def _known_names():
    """Return the destination names of this project: backend aliases and handler names."""
    from django_broadcaster.conf import backends_setting
    from django_broadcaster.registry import event_registry

    return {*backends_setting(), *event_registry.destinations()}


def _errors(last_error, names):
    """Split 0.2.0's ``last_error`` into each named destination's reason (the last time)."""
    known = sorted(names, key=len, reverse=True)
    if not last_error or not known:
        return {}
    pattern = re.compile("(?:^|; )(" + "|".join(re.escape(name) for name in known) + "): ")
    parts = pattern.split(last_error)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _delivery(row, known):
    delivered = row.delivered if isinstance(row.delivered, list) else []
    if row.status == "published":
        delivered = [*delivered, *(name for name in row.backends or () if name not in delivered)]
    entries = {name: {"state": "pending", "attempts": 0} for name in row.backends or ()}
    entries.update({name: {"state": "delivered", "attempts": 1} for name in delivered})
    for name, why in _errors(row.last_error, known | set(entries)).items():
        if name not in delivered:
            state = "unavailable" if why.startswith(_OUTAGE) else "rejected"
            entries[name] = {"state": state, "attempts": 1, "error": why}
    return entries


def forwards(apps, schema_editor):
    outbox = apps.get_model("django_broadcaster", "OutboxEvent")
    database = schema_editor.connection.alias
    sql = _SQL.get(schema_editor.connection.vendor)
    rows = outbox.objects.using(database).order_by("pk")
    if sql is not None:
        schema_editor.execute(sql.format(table=schema_editor.quote_name(outbox._meta.db_table)))
        rows = rows.exclude(last_error="", backends__isnull=True)
    known = _known_names()
    last = None
    while True:
        page = rows if last is None else rows.filter(pk__gt=last)
        batch = list(page.only("pk", "status", "delivered", "backends", "last_error")[:BATCH])
        if not batch:
            return
        for row in batch:
            row.delivery = _delivery(row, known)
        outbox.objects.using(database).bulk_update(batch, ["delivery"])
        last = batch[-1].pk


def backwards(apps, schema_editor):
    outbox = apps.get_model("django_broadcaster", "OutboxEvent")
    rows = outbox.objects.using(schema_editor.connection.alias)
    for row in rows.exclude(delivery={}).only("pk", "delivery").iterator(chunk_size=BATCH):
        delivered = [n for n, entry in row.delivery.items() if entry.get("state") == "delivered"]
        rows.filter(pk=row.pk).update(delivered=delivered)


class Migration(migrations.Migration):
    dependencies = [
        ("django_broadcaster", "0008_event_data_field"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="delivery",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Where the event stands with each destination.",
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
        migrations.RemoveField(model_name="outboxevent", name="delivered"),
        migrations.AlterModelOptions(name="outboxevent", options={"verbose_name": "outbox event"}),
    ]
