"""Drill 8: no unsafe deserialisation or code evaluation; credentials never in logs or errors.

The worker runs with broker credentials pointed at a closed port, so every attempt fails and is
logged; neither its output (at debug verbosity) nor the errors stored in the outbox may contain
a password.
"""

from __future__ import annotations

import ast
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import django_broadcaster
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from harness.process import Process

from .drill import KAFKA_BACKEND, REDIS_BACKEND, report

pytestmark = [pytest.mark.faults]

PACKAGE = Path(django_broadcaster.__file__).parent
#: Modules that turn bytes into arbitrary objects, or run code.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "jsonpickle"}
UNSAFE_CALLS = {"eval", "exec", "__import__"}
SECRET = "S3cret-Pa55word"


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
    "backend",
    [
        pytest.param(
            lambda port: {"url": f"redis://user:{SECRET}@127.0.0.1:{port}/0"}, id="redis-url"
        ),
        pytest.param(
            lambda port: {"url": f"redis://127.0.0.1:{port}/0?password={SECRET}"},
            id="redis-url-query",
        ),
        pytest.param(
            lambda port: {"host": "127.0.0.1", "port": port, "password": SECRET},
            id="redis-option",
        ),
        pytest.param(
            lambda port: {
                "bootstrap_servers": f"127.0.0.1:{port}",
                "topic": "secrets",
                "send_timeout": 1,
                "producer_options": {
                    "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "PLAIN",
                    "sasl_plain_username": "user",
                    "sasl_plain_password": SECRET,
                },
            },
            id="kafka-sasl",
        ),
    ],
)
def test_credentials_never_reach_logs_or_stored_errors(
    workers: Callable[..., Process], backend: Callable[[int], dict[str, Any]]
) -> None:
    options = backend(closed_port())
    dotted = KAFKA_BACKEND if "bootstrap_servers" in options else REDIS_BACKEND
    if dotted == REDIS_BACKEND:
        options["connect_timeout"] = 1
    publisher.publish_event("drill.secret", "https://drills.example.com", {"n": 1})
    run = workers(
        "--burst", "--verbosity", "3", backends={"broker": {"BACKEND": dotted, "OPTIONS": options}}
    )
    assert run.wait(timeout=60) == 0, run.tail()

    output = run.output()
    stored = OutboxEvent.objects.get()
    assert "is unavailable" in output, output  # the failure was logged
    assert "unavailable" in stored.last_error
    assert SECRET not in output
    assert SECRET not in stored.last_error
