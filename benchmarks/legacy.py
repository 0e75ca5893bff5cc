"""django-broadcaster 0.1.1, the release the figures are compared with, in its own venv.

The venv lives in ``.bench/venv-0.1.1`` (made on first use; ``.bench`` ignores itself in git).
0.1.1 has its own outbox table, so it gets its own database, migrated by its own ``migrate``. Its
worker is run as the issue prescribes: ``outbox_worker --interval 0 --batch-size 100``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import psycopg
from psycopg.types.json import Jsonb

from harness.process import Process, django_command

from . import stream
from .database import OUTBOX_TABLE, connect, count_rows, recreate_databases
from .drains import timed_drain
from .workers import REPO
from .workload import EVENT_TYPE, SOURCE, payload

VERSION: Final = "0.1.1"
VENV: Final = REPO / ".bench" / f"venv-{VERSION}"
PROJECT: Final = Path(__file__).resolve().parent / "legacy"
DATABASE: Final = "bench_outbox_011"
REQUIREMENTS: Final = (f"django-broadcaster=={VERSION}", "django", "psycopg[binary]", "redis")
UNFINISHED: Final = ("pending", "processing", "retry")
_FILL = (
    f"INSERT INTO {OUTBOX_TABLE} (id, spec_version, event_type, source, subject, "
    "data_content_type, data_schema, data, status, created_at, updated_at, scheduled_at, "
    "retry_count, max_retries, last_error, publisher_backend, publisher_config) "
    "SELECT gen_random_uuid(), '1.0', %(type)s, %(source)s, '', 'application/json', '', "
    "%(data)s, 'pending', t, t, t, 0, 3, '', '', '{}' FROM generate_series(1, %(n)s) g, "
    "LATERAL (SELECT now() - (%(n)s - g) * interval '1 microsecond' AS t) times"
)


def prepare() -> None:
    """Make the venv if missing, and a fresh, migrated database for 0.1.1."""
    python = ensure_venv()
    recreate_databases([DATABASE])
    subprocess.run(
        [str(python), "-m", "django", "migrate", "-v", "0"], env=_env(), cwd=PROJECT, check=True
    )


def ensure_venv() -> Path:
    """Create the venv with 0.1.1 installed unless it exists; return its interpreter."""
    python = VENV / "bin" / "python"
    VENV.parent.mkdir(exist_ok=True)
    (VENV.parent / ".gitignore").write_text("*\n")  # the directory keeps itself out of git
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *REQUIREMENTS], check=True)
    return python


def drain_rate(count: int) -> float:
    """Return how many events per second 0.1.1's worker drains from ``count`` due events.

    Raises ``RuntimeError`` when an event was not published to the stream.
    """
    stream.reset()
    with connect(DATABASE) as connection:
        connection.execute(f"TRUNCATE {OUTBOX_TABLE}")
        drain = timed_drain(
            [_worker()], lambda: _fill(connection, count), connection, count, UNFINISHED
        )
        published = count_rows(connection, "published")
    if published != count or stream.length() != count:
        raise RuntimeError(f"0.1.1 published {published} of {count} events")
    return drain.rate


def _fill(connection: psycopg.Connection, count: int) -> None:
    values = {"type": EVENT_TYPE, "source": SOURCE, "data": Jsonb(payload()), "n": count}
    connection.execute(_FILL, values)


def _worker() -> Process:
    options = ("--interval", "0", "--batch-size", "100")
    command = django_command("outbox_worker", *options, python=str(VENV / "bin" / "python"))
    return Process(command, env=_env(), cwd=PROJECT, ready_line="Starting outbox worker")


def _env() -> dict[str, str]:
    """Return the environment of 0.1.1's commands: nothing of this repository on the path."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(
        DJANGO_SETTINGS_MODULE="legacy_settings",
        BENCH_LEGACY_DATABASE=DATABASE,
        BENCH_STREAM=stream.STREAM,
    )
    return env
