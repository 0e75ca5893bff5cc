"""Drill 8: no unsafe deserialisation or code evaluation; credentials never in logs or errors.

The worker runs with broker credentials pointed at a closed port, so every attempt fails and is
logged; neither its output (at debug verbosity) nor the errors stored in the outbox may contain
a password. Kafka's SASL password is also sent to the suite's broker, whose listener does not
offer SASL, so that both clients fail in the SASL handshake and say so. A Redis password with an
unencoded ``#``, ``/`` or ``?``, which redis-py would cut short, keeps the worker from starting,
and no part of it is shown either.
"""

from __future__ import annotations

import ast
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import django_broadcaster
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from harness.process import Process

from .drill import KAFKA_ENGINES, REDIS_BACKEND, report

pytestmark = [pytest.mark.faults]

PACKAGE = Path(django_broadcaster.__file__).parent
#: Modules that turn bytes into arbitrary objects, or run code.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "jsonpickle"}
UNSAFE_CALLS = {"eval", "exec", "__import__"}
SECRET = "S3cret-Pa55word"
#: Passwords that redis-py cuts short at the unencoded character (issue 24).
CUT_SHORT = ["2024#Winter", "S3cr#et99", "S3cr/et99", "S3cr?et99"]


def package_sources() -> Iterator[tuple[Path, ast.AST]]:
    """Yield each Python module of the package with its syntax tree."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def unsafe_uses(tree: ast.AST) -> list[str]:
    """Return the unsafe imports and calls in ``tree``, as ``line: what``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        elif isinstance(node, ast.Call):
            function = node.func
            name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")
            names = [name] if name in UNSAFE_CALLS else []
            if name == "load" and getattr(function.value, "id", "") == "yaml":  # type: ignore[attr-defined]
                names.append("yaml.load")
        else:
            continue
        found += [
            f"{node.lineno}: {n}"
            for n in names
            if n in UNSAFE_MODULES | UNSAFE_CALLS | {"yaml.load"}
        ]
    return found


def test_the_package_never_unpickles_marshals_or_evaluates() -> None:
    sources = list(package_sources())
    found = {
        str(path.relative_to(PACKAGE)): uses
        for path, tree in sources
        if (uses := unsafe_uses(tree))
    }
    report("security", f"{len(sources)} modules scanned: no pickle, marshal, shelve, eval or exec")
    assert len(sources) > 10
    assert found == {}


def test_the_scan_finds_what_it_looks_for() -> None:
    tree = ast.parse("import pickle\nfrom marshal import loads\neval('1')\nyaml.load(s)\n")
    assert unsafe_uses(tree) == ["1: pickle", "2: marshal", "3: eval", "4: yaml.load"]


def closed_port() -> int:
    """Return a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("backend", "secret"),
    [
        pytest.param(
            lambda port, secret: {"url": f"redis://user:{secret}@127.0.0.1:{port}/0"},
            SECRET,
            id="redis-url",
        ),
        pytest.param(
            lambda port, secret: {"url": f"redis://127.0.0.1:{port}/0?password={secret}"},
            SECRET,
            id="redis-url-query",
        ),
        pytest.param(
            lambda port, secret: {"host": "127.0.0.1", "port": port, "password": secret},
            SECRET,
            id="redis-option",
        ),
        *(
            pytest.param(
                lambda port, secret: {
                    "url": f"redis://:{quote(secret, safe='')}@127.0.0.1:{port}/0"
                },
                secret,
                id=f"redis-url-encoded-{secret}",
            )
            for secret in CUT_SHORT
        ),
    ],
)
def test_credentials_never_reach_logs_or_stored_errors(
    workers: Callable[..., Process], backend: Callable[[int, str], dict[str, Any]], secret: str
) -> None:
    options = {**backend(closed_port(), secret), "connect_timeout": 1}
    output, stored = run_until_deferred(workers, REDIS_BACKEND, options)
    assert "is unavailable" in output, output  # the failure was logged
    assert "unavailable" in stored.last_error
    for shown in (secret, quote(secret, safe="")):
        assert shown not in output
        assert shown not in stored.last_error


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["closed-port", "broker-without-sasl"])
@pytest.mark.parametrize("engine", list(KAFKA_ENGINES))
def test_a_sasl_password_never_reaches_logs_or_stored_errors(
    workers: Callable[..., Process], request: pytest.FixtureRequest, engine: str, where: str
) -> None:
    if where == "closed-port":
        servers, failure = f"127.0.0.1:{closed_port()}", "broker unreachable"
    else:
        servers, failure = (
            request.getfixturevalue("kafka_bootstrap_servers"),
            "authentication failed",
        )
    options = {
        "bootstrap_servers": servers,
        "topic": "secrets",
        "send_timeout": 1,
        "producer_options": {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "user",
            "sasl_plain_password": SECRET,
        },
    }
    output, stored = run_until_deferred(workers, KAFKA_ENGINES[engine], options)
    report("security", f"{engine}, SASL to the {where.replace('-', ' ')}: {stored.last_error}")
    assert f"is unavailable: {failure}" in output, output
    assert f"is unavailable: {failure}" in stored.last_error
    assert SECRET not in output
    assert SECRET not in stored.last_error


def run_until_deferred(
    workers: Callable[..., Process], dotted: str, options: dict[str, Any]
) -> tuple[str, OutboxEvent]:
    """Run a worker (``--burst``, debug verbosity) on one event for the backend ``dotted``.

    Return the worker's output and the event's row, which the failing backend left pending.
    """
    publisher.publish_event("drill.secret", "https://drills.example.com", {"n": 1})
    run = workers(
        "--burst", "--verbosity", "3", backends={"broker": {"BACKEND": dotted, "OPTIONS": options}}
    )
    assert run.wait(timeout=60) == 0, run.tail()
    return run.output(), OutboxEvent.objects.get()


def pieces(secret: str) -> list[str]:
    """Return ``secret`` and the parts redis-py would cut it into, but for bare numbers."""
    return [secret, *(part for part in re.split("[#/?]", secret) if not part.isdigit())]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("secret", CUT_SHORT)
def test_a_password_redis_py_would_cut_short_stops_the_worker_unseen(
    workers: Callable[..., Process], secret: str
) -> None:
    url = f"redis://:{secret}@127.0.0.1:{closed_port()}/0"
    publisher.publish_event("drill.secret", "https://drills.example.com", {"n": 1})
    run = workers(
        "--burst",
        "--verbosity",
        "3",
        backends={"broker": {"BACKEND": REDIS_BACKEND, "OPTIONS": {"url": url}}},
    )
    assert run.wait(timeout=60) != 0, run.tail()

    output = run.output()
    stored = OutboxEvent.objects.get()
    cut = re.search("[#/?]", secret)
    report("security", f"{cut and cut[0]!r} in a Redis password: the worker refused to start")
    assert "django_broadcaster.E003" in output and "percent-encode it as %" in output, output
    assert (stored.status, stored.last_error) == ("pending", "")
    for piece in pieces(secret):
        assert piece not in output
