"""Fixtures of the fault-injection drills: scale, own service instances, worker processes.

Every drill runs the real ``outbox_worker`` command as a subprocess. Drills that stop, restart
or freeze a service get their own instance (``own_redis``, ``own_tansu``, ``own_postgres``);
the others use the suite's shared services (``redis_url``, ``kafka_bootstrap_servers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from harness.process import Process

from .drill import FIGURES, Scale, start_worker
from .services import PostgresCluster, RedisServer, TansuBroker


@pytest.fixture(scope="session")
def scale() -> Scale:
    """Return the drills' size: ``FAULTS_SCALE=ci`` (default) or ``full``."""
    return Scale.from_environment()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """Yield a Redis server that only this drill uses (and may stop or freeze)."""
    with RedisServer() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def own_tansu() -> Iterator[TansuBroker]:
    """Yield a Tansu broker that only this drill uses (and may stop)."""
    with TansuBroker() as broker:
        yield broker  # type: ignore[misc]


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """Yield a running PostgreSQL cluster with an empty database ``drill``."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def drill_database(own_postgres: PostgresCluster, django_db_blocker: Any) -> Iterator[str]:
    """Yield the alias of a migrated database on ``own_postgres``, usable from this process.

    The alias exists only for this drill; the worker subprocess reaches the same database
    through ``DATABASE_URL`` (see ``tests/settings.py``).
    """
    alias = "drill"
    configured = connections.configure_settings(
        {"default": {}, alias: own_postgres.settings_dict()}
    )
    connections.settings[alias] = configured[alias]
    with django_db_blocker.unblock():
        try:
            call_command("migrate", database=alias, verbosity=0)
            yield alias
        finally:
            connections[alias].close()
            del connections[alias]
            del connections.settings[alias]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Return a function that starts worker processes; kill any still running at teardown.

    It takes what ``drill.start_worker`` takes after the log directory and the name.
    """
    started: list[Process] = []

    def start(*args: str, **kwargs: Any) -> Process:
        run = start_worker(tmp_path, f"worker-{len(started) + 1}", *args, **kwargs)
        started.append(run)
        return run

    yield start
    for run in started:
        run.close()


@pytest.fixture
def cleanup_stream(redis_url: str) -> Iterator[Callable[[str], str]]:
    """Return a function that registers a stream of the shared Redis for deletion at teardown."""
    import redis

    streams: list[str] = []

    def register(name: str) -> str:
        streams.append(name)
        return name

    yield register
    client = redis.Redis.from_url(redis_url)
    if streams:
        client.delete(*streams)
    client.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures the drills measured."""
    if not FIGURES:
        return
    terminalreporter.section("fault drill figures")
    for drill, text in FIGURES:
        terminalreporter.write_line(f"{drill}: {text}")
