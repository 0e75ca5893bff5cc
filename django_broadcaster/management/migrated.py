"""The first thing the commands check: that the tables they use are there, and migrated.

Without it a worker started before ``migrate`` retried for ever, logging SQL errors, and the
other commands ended in a traceback. :func:`require_migrated` asks the database once, at start,
and turns a missing table or an unapplied migration of this app into one line that says what to
run. It is not a system check: ``migrate`` runs the database checks before it migrates, so such
a check would stand in the way of the command that fixes what it reports.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import DatabaseError, connections, router
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Model

APP = "django_broadcaster"


def require_migrated(model: type[Model], noun: str) -> None:
    """Raise ``CommandError`` when ``model``'s table (the ``noun`` table) is missing from its
    database, or a migration of this app is not applied there; the message names the command.

    A database that cannot be reached is not reported here: the command meets it next (the
    worker and the consumers wait for it, as for a restart).
    """
    alias = router.db_for_write(model)
    try:
        problem = _problem(model, noun, alias)
    except DatabaseError:
        return
    if problem:
        option = "" if alias == "default" else f" --database {alias}"
        raise CommandError(f"{problem}: run `python manage.py migrate{option}`.")


def _problem(model: type[Model], noun: str, alias: str) -> str:
    """Return what is missing in the database ``alias``, or ``""``."""
    connection = connections[alias]
    if model._meta.db_table not in connection.introspection.table_names():
        return f"the {noun} table is missing"
    # Tables made without migrations (pytest-django's --nomigrations) have none to apply.
    executor = MigrationExecutor(connection)
    targets = executor.loader.graph.leaf_nodes(APP)
    unapplied = [m.name for m, _ in executor.migration_plan(targets) if m.app_label == APP]
    if not unapplied:
        return ""
    noun = "migration" if len(unapplied) == 1 else "migrations"
    return f"{APP} has {len(unapplied)} unapplied {noun} ({', '.join(unapplied)})"
