"""The package's shape, as ``docs/architecture.md`` draws it.

Modules import only from their own layer or the layers below, never in a circle; one event's
walk from ``publish_event`` to its recorded outcome crosses at most 12 modules; no module is
over 300 lines, and none under 30 only forwards.
"""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from django.db import transaction

from django_broadcaster.backends import LocMemBackend
from django_broadcaster.events import CloudEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker import Worker

PACKAGE = Path(__file__).resolve().parents[2] / "django_broadcaster"

#: The layers, lowest first: a module may import from its own layer and those below.
LAYERS = [
    ["exceptions", "signals", "conf", "events"],
    [
        "formats",
        "typed",
        "telemetry",
        "retry",
        "registry",
        "stopping",
        "signatures",
        "commands",
        "predicates",
        "handler_names",
        "globs",
        "routing",
        "dead_letters",
        "schemas",
        "validation",
        "fingerprints",
    ],
    ["outbox", "consumers.inbox"],
    ["backends"],
    ["publishers", "async_publishing", "bus", "asyncapi"],
    ["worker", "consumers"],
    [
        "admin",
        "checks",
        "schema_checks",
        "receivers",
        "testing",
        "pytest_plugin",
        "apps",
        "models",
        "management",
        "migrations",
    ],
]
MAX_WALK = 12
MAX_LINES = 300


def modules() -> dict[str, Path]:
    """Return every module of the package by dotted name (``outbox.models``; ``""`` for it)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(part for part in parts if part != "__init__")
        found[name] = path
    return found


def layer_of(module: str) -> int:
    """Return the layer of ``module``: the one listing its longest dotted prefix."""
    best, layer = -1, len(LAYERS)
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, layer = len(name), index
    return layer


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Return the package's modules that ``name`` imports, at module level or in a function."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif (node.module or "").startswith("django_broadcaster"):
                target = node.module.removeprefix("django_broadcaster").lstrip(".")  # type: ignore[union-attr]
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}".lstrip(".")
                found.add(sub if sub in known else target)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, set(known)) for name, path in known.items()}


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module) and target != ""
    ]
    assert upward == []


def test_every_module_has_a_layer() -> None:
    assert [name for name in modules() if name and layer_of(name) == len(LAYERS)] == []


def test_no_import_circle() -> None:
    graph = import_graph()
    # The package's own __init__ loads its names lazily: it imports nothing at module level.
    graph[""] = set()
    circles = [cycle for cycle in _cycles(graph)]
    assert circles == []


def _cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Yield one circle of imports per strongly connected group (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                yield from visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                yield sorted(group)

    for node in list(graph):
        if node not in index:
            yield from visit(node)


def test_no_module_is_over_300_lines() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


#: Modules that re-export by design: Django imports ``<app>.models`` to find the models.
FORWARDING_BY_DESIGN = {"models"}


def test_no_short_module_only_forwards() -> None:
    """A module under 30 lines of imports and names of other modules is a detour, unless it is a
    package's ``__init__`` (the package's face) or Django looks for it by name."""
    forwarding = []
    for name, path in modules().items():
        if path.name == "__init__.py" or name in FORWARDING_BY_DESIGN:
            continue
        body = [node for node in ast.parse(path.read_text()).body if not _is_docstring(node)]
        short = len(path.read_text().splitlines()) < 30
        if short and body and all(_forwards(node) for node in body):
            forwarding.append(name)
    assert forwarding == []


def _forwards(node: ast.stmt) -> bool:
    """Return whether ``node`` imports, or binds a name to another name (``A = B``)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    return isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
        node.value, ast.Name | ast.Attribute | ast.List
    )


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


class _Walk:
    """The package's modules that run code, in the order they first do, across threads."""

    def __init__(self) -> None:
        self.modules: list[str] = []
        self._lock = threading.Lock()

    def trace(self, frame: FrameType, event: str, arg: Any) -> None:
        name = frame.f_globals.get("__name__", "")
        if event == "call" and name.startswith("django_broadcaster"):
            with self._lock:
                if name not in self.modules:
                    self.modules.append(name)


@pytest.mark.django_db
def test_one_events_walk_crosses_at_most_12_modules() -> None:
    registry = EventRegistry()
    registry.register("order.created")(_on_order)
    worker = Worker(backends={"mem": LocMemBackend("mem")}, registry=registry, overlap=False)
    walk = _Walk()
    threading.settrace(walk.trace)  # type: ignore[arg-type]
    sys.settrace(walk.trace)  # type: ignore[arg-type]
    try:
        with transaction.atomic():
            publisher.publish_event("order.created", source="shop", data={"id": 1})
        tally = worker.run_once()
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
        worker.close()
    assert tally.published == 1
    print("\n".join(walk.modules))
    assert len(walk.modules) <= MAX_WALK, walk.modules


def _on_order(event: CloudEvent) -> None:
    """A local handler: the walk covers handlers as well as backends."""
