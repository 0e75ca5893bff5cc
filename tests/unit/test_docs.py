"""The docs agree with the code: reference tables, command options, and claims that went stale.

The pages that run as written are checked by ``tests/newcomer``; these checks cover the prose:
lists a reader relies on being complete, and statements the code once made false.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from django.core.management import load_command_class

from django_broadcaster.admin import OutboxEventAdmin
from django_broadcaster.outbox.models import Status
from django_broadcaster.publishers import Publisher
from tests.newcomer.pages import RUN_AS_WRITTEN

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMANDS = Path(__file__).resolve().parents[2] / "django_broadcaster/management/commands"
#: Options every Django command has, documented by Django.
DJANGO_OPTIONS = {
    "--help",
    "--version",
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
}


def page(name: str) -> str:
    return (DOCS / name).read_text()


def sections() -> list[str]:
    """Return every section of every page: from one heading to the next."""
    found = []
    for path in sorted(DOCS.glob("*.md")):
        found += re.split(r"^#+ ", path.read_text(), flags=re.MULTILINE)
    return found


def table_names(text: str, heading: str) -> set[str]:
    """Return the first cell of each row of the first table after ``heading``."""
    after = text[text.index(heading) :]
    table = re.search(r"((?:^\|.*\n)+)", after, flags=re.MULTILINE)
    assert table is not None, f"no table after {heading!r}"
    return set(re.findall(r"^\| `(\w+)` \|", table[1], flags=re.MULTILINE))


def test_the_publish_event_table_lists_every_argument() -> None:
    parameters = set(inspect.signature(Publisher.publish_event).parameters) - {"self"}
    assert table_names(page("events.md"), "### `publish_event`") == parameters


def test_the_status_row_names_every_status() -> None:
    [row] = [line for line in page("events.md").splitlines() if line.startswith("| `status` |")]
    assert [status for status in Status.values if f"`{status}`" not in row] == []


@pytest.mark.parametrize(
    "command", sorted(path.stem for path in COMMANDS.glob("[!_]*.py") if path.stem != "__init__")
)
def test_every_option_of_a_command_is_documented_where_the_command_is(command: str) -> None:
    parser = load_command_class("django_broadcaster", command).create_parser("manage.py", command)
    options = {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option not in DJANGO_OPTIONS
    }
    about = "\n".join(text for text in sections() if command in text)
    assert sorted(option for option in options if option not in about) == []


#: (what the code does, a claim it makes false, the check that the code still does it)
CONTRADICTED = [
    (
        "the worker serves Prometheus metrics",
        r"no metrics of its own",
        lambda: "--metrics-port" in (COMMANDS / "outbox_worker.py").read_text(),
    ),
    (
        "outbox_cleanup and CLEANUP_AFTER delete old rows",
        r"never deleted by the package",
        lambda: (COMMANDS / "outbox_cleanup.py").exists(),
    ),
    (
        "the admin has actions that change events",
        r"admin[^.]*read-only|read-only list",
        lambda: bool(OutboxEventAdmin.actions),
    ),
]


@pytest.mark.parametrize(("fact", "claim", "holds"), CONTRADICTED, ids=[c[0] for c in CONTRADICTED])
def test_no_page_makes_a_claim_the_code_contradicts(fact: str, claim: str, holds: object) -> None:
    assert callable(holds) and holds(), f"the code no longer does this: {fact}"
    found = [
        f"{path.name}: {match[0]!r}"
        for path in sorted(DOCS.glob("*.md"))
        for match in re.finditer(claim, " ".join(path.read_text().split()))
    ]
    assert found == []


def test_no_page_shows_test_counts_that_nothing_checks() -> None:
    """Counts of the suite go stale with every test added; pages that run (tests/newcomer,
    outputs checked) keep theirs true."""
    found = [
        f"{path.name}: {match[0]!r}"
        for path in sorted(DOCS.glob("*.md"))
        if path.name not in RUN_AS_WRITTEN
        for match in re.finditer(r"\b\d+ passed\b", path.read_text())
    ]
    assert found == []
