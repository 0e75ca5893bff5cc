"""The sdist and the wheel are fit for PyPI, and the sdist is a source a packager can test.

``twine check`` passes; the license travels in both; the description PyPI shows (the README)
links nothing by a relative path and holds no MyST role, which PyPI would show as raw text; any
``Project-URL`` is absolute; the sdist carries the docs, the tests and what they import.
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

from .conftest import Distributions, require_packages, run_logged, source_files

pytestmark = pytest.mark.newcomer

#: What the sdist carries beside the package: the docs, and the tests with all they need to run.
CARRIED = (".readthedocs.yaml", "tox.ini", "docs/", "tests/", "harness/", "benchmarks/")
#: A Markdown link or image target, or an HTML ``src``/``href``.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)|(?:src|href)=\"([^\"]+)\"")
ABSOLUTE = re.compile(r"(https://|http://|mailto:|#)")
MYST_ROLE = re.compile(r"\{[a-z][\w:-]*\}`")


def sdist_names(sdist: Path) -> set[str]:
    """Return the paths in ``sdist``, without its top directory."""
    with tarfile.open(sdist) as archive:
        return {name.partition("/")[2] for name in archive.getnames()}


def wheel_metadata(wheel: Path) -> Message:
    """Return the wheel's ``METADATA``: headers, and the description as the payload."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def test_twine_check_passes(distributions: Distributions, tmp_path: Path) -> None:
    require_packages("twine")
    check = [sys.executable, "-m", "twine", "check", "--strict"]
    run_logged([*check, str(distributions.sdist), str(distributions.wheel)], tmp_path / "log")


def test_the_license_is_in_the_sdist_and_the_wheel(distributions: Distributions) -> None:
    assert "LICENSE" in sdist_names(distributions.sdist)
    with zipfile.ZipFile(distributions.wheel) as archive:
        assert [name for name in archive.namelist() if name.endswith("/licenses/LICENSE")]
    metadata = wheel_metadata(distributions.wheel)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_the_description_reads_on_pypi(distributions: Distributions) -> None:
    metadata = wheel_metadata(distributions.wheel)
    description = metadata.get_payload()
    links = [target for found in LINK.findall(description) for target in found if target]
    assert [link for link in links if not ABSOLUTE.match(link)] == []
    assert MYST_ROLE.findall(description) == []
    urls = [value.partition(", ")[2] for value in metadata.get_all("Project-URL") or []]
    assert [url for url in urls if not url.startswith("https://")] == []


def test_the_sdist_carries_the_docs_and_the_tests(distributions: Distributions) -> None:
    wanted = [name for name in source_files() if name.startswith(CARRIED)]
    assert wanted, "no docs or tests found to look for"
    assert sorted(set(wanted) - sdist_names(distributions.sdist)) == []


def test_the_sdists_tests_are_collected(distributions: Distributions, tmp_path: Path) -> None:
    """Its tests import from what it carries: none is left out by a missing module."""
    with tarfile.open(distributions.sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    [source] = tmp_path.iterdir()
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly"]
    run_logged([*collect, "-p", "no:cacheprovider", "tests"], tmp_path / "log", cwd=source)
