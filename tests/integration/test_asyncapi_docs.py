"""docs/asyncapi.md, run as written: its settings, its typed event, its commands and its session.

The page needs a Kafka broker and a Redis server in its settings (which the document only
names), so it is run here, on the suite's database, rather than by tests/newcomer.
"""

from __future__ import annotations

import doctest
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from django_broadcaster.asyncapi import document
from django_broadcaster.checks import check_settings
from django_broadcaster.models import OutboxEvent
from django_broadcaster.schema_checks import check_schemas
from tests.asyncapi.parser import errors
from tests.newcomer.pages import Block, output_matches, read_page

PAGE = Path(__file__).resolve().parents[2] / "docs/asyncapi.md"


def blocks(kind: str) -> list[Block]:
    return [block for block in read_page(PAGE) if block.kind == kind]


@pytest.fixture
def page_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Write the page's files, run its settings blocks; yield the ``BROADCASTER`` they make."""
    namespace: dict[str, Any] = {}
    for block in blocks("file"):
        if block.append:
            exec(block.text, namespace)  # the page's own code
        else:
            target = tmp_path / block.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text)
            (target.parent / "__init__.py").touch()
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [name for name in sys.modules if name == "shop" or name.startswith("shop.")]:
        monkeypatch.delitem(sys.modules, name)
    with override_settings(BROADCASTER=namespace["BROADCASTER"]):
        yield namespace["BROADCASTER"]
    for name in [name for name in sys.modules if name == "shop" or name.startswith("shop.")]:
        del sys.modules[name]


def test_the_pages_settings_pass_the_checks(page_settings: dict[str, Any]) -> None:
    assert check_settings() == [] and check_schemas() == []


def test_the_pages_document_passes_the_parser(page_settings: dict[str, Any]) -> None:
    found = document()
    assert found["info"]["title"] == "Shop events"
    assert set(found["channels"]["orders"]["messages"]) == {"order.placed", "other"}
    assert errors(found) == []


def test_the_pages_commands_print_what_it_shows(
    page_settings: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    [block] = blocks("console")
    for command in block.commands:
        words = command.shell.split("|")[0].split()
        assert words[:3] == ["python", "manage.py", "outbox_asyncapi"], command.line
        out = StringIO()
        call_command(*words[2:], stdout=out)
        shown = "\n".join(out.getvalue().splitlines()[:4]) if "head" in command.shell else ""
        assert output_matches(command.output, shown), (command.line, shown)
    assert (tmp_path / "asyncapi.json").exists()


@pytest.mark.django_db
def test_the_pages_session_prints_what_it_shows(page_settings: dict[str, Any]) -> None:
    [block] = blocks("pycon")
    test = doctest.DocTestParser().get_doctest(block.text, {}, block.where, str(PAGE), block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, out=sys.stdout.write)
    assert runner.tries >= 4 and runner.failures == 0
    assert OutboxEvent.objects.count() == 0
