"""Find or start PostgreSQL, Redis, a Kafka-protocol broker and RabbitMQ for the benchmarks.

When ``DATABASE_URL``, ``REDIS_URL``, ``KAFKA_BOOTSTRAP_SERVERS`` and ``RABBITMQ_URL`` are all
set, those services
are used as they are. Otherwise ``scripts/services`` starts a throwaway set on free loopback ports,
as ``scripts/test`` does, and stops it afterwards. That script runs PostgreSQL with ``fsync`` and
``synchronous_commit`` off, which suits tests but not reported figures, so PostgreSQL is restarted
here with the durable defaults.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "services"
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "RABBITMQ_URL")


@contextmanager
def running_services() -> Iterator[None]:
    """Make the services' variables available in ``os.environ`` for the block.

    Services this call starts are stopped when the block exits. Raises ``RuntimeError`` when
    ``scripts/services`` cannot start them.
    """
    if all(os.environ.get(name) for name in SERVICE_VARS):
        yield
        return
    run_dir = tempfile.mkdtemp(prefix="django-broadcaster-bench.")
    try:
        os.environ.update(_start(run_dir))
        _restart_postgres_durable(Path(run_dir), os.environ["DATABASE_URL"])
        yield
    finally:
        _services("stop", run_dir)


def _services(command: str, run_dir: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SERVICES_RUN_DIR": run_dir, "PYTHON": sys.executable}
    for name in SERVICE_VARS:
        env.pop(name, None)
    return subprocess.run(
        ["bash", str(SCRIPT), command], env=env, stdout=subprocess.PIPE, text=True, check=False
    )


def _start(run_dir: str) -> dict[str, str]:
    """Start the services in ``run_dir``; return the variables ``scripts/services`` exported."""
    started = _services("start", run_dir)
    if started.returncode != 0:
        raise RuntimeError(f"scripts/services start failed (exit {started.returncode})")
    exported = {}
    for line in started.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        exported[name] = shlex.split(value)[0] if value else ""
    missing = [name for name in SERVICE_VARS if not exported.get(name)]
    if missing:
        raise RuntimeError(f"scripts/services did not start {missing}; see the messages above")
    return exported


def _restart_postgres_durable(run_dir: Path, database_url: str) -> None:
    """Restart the server in ``run_dir`` on the same port without the non-durable settings."""
    data = run_dir / "pg" / "data"
    postgres = shlex.split((data / "postmaster.opts").read_text())[0]
    port = str(urlsplit(database_url).port)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {run_dir / 'pg'}"
    with psycopg.connect(database_url, autocommit=True) as server:
        row = server.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if row and row[0]:  # scripts/services preloads pg_stat_statements where the server has it
        options += f" -c shared_preload_libraries={row[0]}"
    command = [str(Path(postgres).parent / "pg_ctl"), "-D", str(data), "-m", "fast", "-w"]
    command += ["-o", options, "-l", str(run_dir / "pg" / "server.log"), "restart"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
