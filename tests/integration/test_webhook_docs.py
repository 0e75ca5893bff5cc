"""The webhook sections of docs/backends.md and docs/consumers.md run as written.

Those pages are not followed whole by ``tests/newcomer`` (most of their blocks need a Kafka
cluster or a project of the reader's), so their webhook sections are run here: each settings
block must pass ``manage.py check``'s checks, the URLconf must route to the view, every
``pycon`` block must print what it shows, and the install line must name an extra that exists.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.urls import resolve

from django_broadcaster.checks import check_settings
from django_broadcaster.receivers import webhook_view

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"backends.md": "## WebhookBackend", "consumers.md": "## Receiving webhooks"}
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[tuple[str, str]]:
    """Return ``(page, code)`` of every ``language`` block in the webhook sections."""
    found = []
    for page, heading in SECTIONS.items():
        text = (ROOT / "docs" / page).read_text()
        section = re.split(r"^## ", text[text.index(heading) + 3 :], flags=re.MULTILINE)[0]
        found += [(page, code) for lang, code in BLOCK.findall(section) if lang == language]
    return found


@pytest.mark.parametrize(("page", "code"), blocks("python"))
def test_each_python_block_runs_and_its_settings_pass_the_checks(page: str, code: str) -> None:
    namespace: dict[str, Any] = {"BROADCASTER": {}}
    exec(compile(code, page, "exec"), namespace)
    if "urlpatterns" in namespace:
        with override_settings(ROOT_URLCONF=type("URLs", (), namespace)):
            assert resolve("/webhooks/").func is webhook_view
        return
    with override_settings(BROADCASTER=namespace["BROADCASTER"]):
        assert check_settings() == []


@pytest.mark.parametrize(("page", "code"), blocks("pycon"))
def test_each_pycon_block_prints_what_it_shows(page: str, code: str) -> None:
    test = doctest.DocTestParser().get_doctest(code, {}, page, page, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_the_install_line_names_the_webhooks_extra() -> None:
    [(_, console)] = blocks("console")
    extra = re.search(r"django-broadcaster\[(\w+)\]", console)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert extra is not None and re.search(rf"^{extra[1]} = \[", pyproject, re.MULTILINE)
