"""Shared fixtures: real services and unique names.

Services come from the environment (``scripts/test`` starts them and sets it):
``REDIS_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``RABBITMQ_URL`` and ``DATABASE_URL`` (see
``tests/settings.py``). A test that needs one carries the marker ``redis``, ``kafka``,
``rabbitmq`` or ``postgres``, or asks for the ``redis_url`` / ``kafka_bootstrap_servers`` /
``rabbitmq_url`` fixture. When the service is missing or does not
answer, the test is skipped, except under ``CI=true``, where it fails: CI must never pass by
skipping the tests that matter.

``garbage_collector_restored`` undoes the garbage collector's tuning that ``outbox_worker``
applies to the process running it, for tests that call the command in-process.
"""

from __future__ import annotations

import functools
import gc
import os
import re
import socket
import struct
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.ci import missing

SERVICE_TIMEOUT_S = 3.0
START_HINT = 'run scripts/test, or eval "$(scripts/services start)" first'


@functools.cache
def _redis_problem(url: str) -> str | None:
    """Return why Redis at ``url`` cannot be used, or ``None`` when it answers PING."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed (pip install -e '.[test]')"
    client = redis.Redis.from_url(
        url, socket_connect_timeout=SERVICE_TIMEOUT_S, socket_timeout=SERVICE_TIMEOUT_S
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis at {url} does not answer: {exc}"
    finally:
        client.close()
    return None


def _kafka_api_versions(host: str, port: int) -> None:
    """Send a Kafka ApiVersions v0 request and check the answer; raise ``OSError`` if bad.

    A raw request keeps the check fast and independent of any client library.
    """
    client_id = b"conftest"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id  # key, version, corr id
    with socket.create_connection((host, port), timeout=SERVICE_TIMEOUT_S) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        header = sock.recv(10, socket.MSG_WAITALL)
    if len(header) < 10:
        raise OSError("connection closed before an ApiVersions response")
    _size, correlation_id, error_code = struct.unpack(">iih", header)
    if correlation_id != 1 or error_code != 0:
        raise OSError(f"bad ApiVersions answer: correlation {correlation_id}, error {error_code}")


@functools.cache
def _kafka_problem(bootstrap_servers: str) -> str | None:
    """Return why no broker in ``bootstrap_servers`` can be used, or ``None`` if one answers."""
    errors = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _kafka_api_versions(host or "127.0.0.1", int(port))
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
        else:
            return None
    return f"no Kafka broker answers at {bootstrap_servers}: {'; '.join(errors)}"


def _rabbitmq_problem(url: str) -> str | None:
    """Return why RabbitMQ at ``url`` cannot be used, or ``None`` when a connection opens.

    Not cached, unlike the others: the fault drills stop and start the broker.
    """
    try:
        import pika
        from pika.exceptions import AMQPError
    except ImportError:
        return "the pika package is not installed (pip install -e '.[test]')"
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = parameters.blocked_connection_timeout = SERVICE_TIMEOUT_S
    try:
        pika.BlockingConnection(parameters).close()
    except AMQPError as exc:
        return f"RabbitMQ at {url} does not answer: {exc!r}"
    return None


def _require_service(variable: str, problem: Callable[[str], str | None]) -> str:
    """Return the address in ``variable`` once ``problem`` finds none; else skip (CI: fail)."""
    address = os.environ.get(variable)
    if not address:
        missing(f"{variable} is not set ({START_HINT})")
    found = problem(address)
    if found:
        missing(found)
    return address


def _require_redis() -> str:
    return _require_service("REDIS_URL", _redis_problem)


def _require_kafka() -> str:
    return _require_service("KAFKA_BOOTSTRAP_SERVERS", _kafka_problem)


def _require_rabbitmq() -> str:
    return _require_service("RABBITMQ_URL", _rabbitmq_problem)


def _require_postgres() -> None:
    from django.db import connections

    vendor = connections["default"].vendor
    if vendor != "postgresql":
        missing(f"needs PostgreSQL, the default database is {vendor} (set DATABASE_URL)")


_REQUIREMENTS = {
    "redis": _require_redis,
    "kafka": _require_kafka,
    "rabbitmq": _require_rabbitmq,
    "postgres": _require_postgres,
}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, under CI=true, fail) a marked test whose service is missing."""
    for name, require in _REQUIREMENTS.items():
        if item.get_closest_marker(name) is not None:
            require()


@pytest.fixture
def redis_url() -> str:
    """Return ``REDIS_URL`` after checking that the server answers PING."""
    return _require_redis()


@pytest.fixture
def kafka_bootstrap_servers() -> str:
    """Return ``KAFKA_BOOTSTRAP_SERVERS`` after a Kafka-protocol round trip to a broker."""
    return _require_kafka()


@pytest.fixture
def rabbitmq_url() -> str:
    """Return ``RABBITMQ_URL`` after opening (and closing) a connection to the broker."""
    return _require_rabbitmq()


@pytest.fixture
def rabbitmq_queue(rabbitmq_url: str, unique_name: str) -> Iterator[Any]:
    """Yield a ``tests.amqp.Queue``: the durable queue ``unique_name``, bound to ``amq.topic``
    for every routing key under ``<unique_name>.``; it is deleted afterwards."""
    from tests.amqp import Queue

    queue = Queue(rabbitmq_url, unique_name)
    yield queue
    queue.delete()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """Return a name unique to this test run, valid as a Redis key and a Kafka topic."""
    test_name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")[:60]
    return f"t-{test_name}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_client(redis_url: str, unique_name: str) -> Iterator[Any]:
    """Yield a ``redis.Redis`` on ``redis_url``; delete the keys starting with ``unique_name``.

    Only those keys are deleted, never the whole database, so that runs sharing one server
    (the tox matrix in parallel) do not wipe each other's streams: name keys with
    ``unique_name``.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{unique_name}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def global_handlers() -> Iterator[Any]:
    """Return ``register(registry, event_type, handler)`` for the package's global registries.

    What it registers is unregistered afterwards, so other tests see the registries as before.
    """
    registered: list[tuple[Any, str, Any]] = []

    def register(registry: Any, event_type: str, handler: Any) -> None:
        registry.register(event_type)(handler)
        registered.append((registry, event_type, handler))

    yield register
    for registry, event_type, handler in registered:
        registry.unregister(handler, event_type)


@pytest.fixture
def garbage_collector_restored() -> Iterator[None]:
    """Undo ``tune_for_worker()`` (``outbox_worker`` runs it) on this test process afterwards.

    Unfreezing also releases what the interpreter froze itself (Python 3.12 freezes a few
    hundred tuples at start-up): they only move to the oldest generation.
    """
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()
    else:
        gc.disable()
