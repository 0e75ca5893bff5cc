"""Commands run before ``migrate``: one clear line and a non-zero exit, not retries or a traceback.

Each command runs as a subprocess on a database of its own that has no tables, or only some of
the package's migrations.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from tests.workers import start_command, start_worker

pytestmark = pytest.mark.django_db(transaction=True)

LOCMEM = {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}
MIGRATE = "run `python manage.py migrate`."
#: Long enough for a cold start on a busy machine; a worker that retries never ends by then.
EXIT_S = 60
MIGRATIONS = Path(__file__).resolve().parents[2] / "django_broadcaster" / "migrations"


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Yield the environment that points a subprocess at a new database with no tables."""
    if connection.vendor == "sqlite":
        yield {"TEST_DATABASE_NAME": str(tmp_path / "empty.sqlite3")}
        return
    name = f"{connection.settings_dict['NAME']}_empty"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield {"TEST_DATABASE_NAME": name}
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def output_and_status(*command: str, env: dict[str, str]) -> tuple[str, int]:
    with start_command(*command, env=env) as process:
        status = process.wait(EXIT_S)
    return process.output(), status


@pytest.mark.parametrize("mode", [[], ["--burst"]], ids=["loop", "burst"])
def test_the_worker_says_the_outbox_table_is_missing_and_exits_1(
    empty_database: dict[str, str], mode: list[str]
) -> None:
    with start_worker(*mode, backends=LOCMEM, env=empty_database) as worker:
        status = worker.wait(EXIT_S)
    assert (worker.output(), status) == (f"CommandError: the outbox table is missing: {MIGRATE}", 1)


@pytest.mark.parametrize(
    ("command", "table"),
    [
        (["outbox_status"], "outbox"),
        (["outbox_requeue"], "outbox"),
        (["outbox_cleanup", "--older-than", "7d"], "outbox"),
        (["consume_redis", "--stream", "s", "--group", "g", "--url", "redis://x:1"], "inbox"),
        (["consume_replay", "--dry-run"], "inbox"),
        (["consume_kafka", "--topic", "t", "--group", "g", "--bootstrap-servers", "x:1"], "inbox"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else value,
)
def test_every_command_that_uses_a_table_says_so(
    empty_database: dict[str, str], command: list[str], table: str
) -> None:
    output, status = output_and_status(*command, env=empty_database)
    assert (output, status) == (f"CommandError: the {table} table is missing: {MIGRATE}", 1)


def test_an_unapplied_migration_of_the_package_is_named(empty_database: dict[str, str]) -> None:
    *_, before_last, last = sorted(path.stem for path in MIGRATIONS.glob("0*.py"))
    output, status = output_and_status(
        "migrate", "django_broadcaster", before_last, "-v", "0", env=empty_database
    )
    assert status == 0, output
    with start_worker("--burst", backends=LOCMEM, env=empty_database) as worker:
        status = worker.wait(EXIT_S)
    assert (worker.output(), status) == (
        f"CommandError: django_broadcaster has 1 unapplied migration ({last}): {MIGRATE}",
        1,
    )
