"""Fixtures of a newcomer's first hour: the built distributions, a fresh venv, the quickstart.

Everything here is built once per test session: the sdist and the wheel (``python -m build``),
a venv made with ``python -m venv`` holding the wheel with its ``[redis]`` extra (installed
as a user would, not editable), and the project that following ``docs/quickstart.md`` in that
venv leaves behind. A tool or service these need that is missing skips the tests, and fails
them under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.ci import missing

from .follow import Project, reader_environment
from .pages import RUN_AS_WRITTEN

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: The Redis database the docs' project uses: not the suite's, so that its `events` stream
#: is the quickstart's alone.
DOCS_REDIS_DATABASE = 11
BUILD_TIMEOUT_S = 300


@dataclass(frozen=True)
class Distributions:
    """The sdist and the wheel of this checkout."""

    sdist: Path
    wheel: Path


def run_logged(command: list[str], log: Path, **options: object) -> None:
    """Run ``command``, its output going to ``log``; fail the test with that output if it fails."""
    with log.open("w") as output:
        done = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, **options
        )
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` exited {done.returncode}:\n{log.read_text()}")


def require_packages(*names: str) -> None:
    """Skip (fail under CI=true) unless every package named is installed for the suite's Python.

    Installed, not importable: a ``build/`` directory left by setuptools imports as ``build``.
    """
    absent = []
    for name in names:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
    if absent:
        missing(f"{', '.join(absent)} not installed (pip install -e '.[release]')")


def make_venv(path: Path, log: Path, *requirements: str, cwd: Path | None = None) -> Path:
    """Make a venv at ``path`` with ``python -m venv``, pip-install ``requirements``; return it.

    ``cwd`` is where pip runs, for requirements given as paths.
    """
    run_logged([sys.executable, "-m", "venv", str(path)], log)
    if requirements:
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--no-input"]
        run_logged([*pip, *requirements], log.with_suffix(".pip.log"), cwd=cwd)
    return path


def source_files() -> list[str]:
    """Return the files git tracks, and those it would (untracked, not ignored), by path."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        missing(f"cannot list the source files with git: {exc}")
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="session")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """Build the sdist, then the wheel from it, as a release would (``python -m build``)."""
    require_packages("build")
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)]
    run_logged(build, out / "build.log", cwd=out)
    [sdist], [wheel] = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    return Distributions(sdist, wheel)


@pytest.fixture(scope="session")
def fresh_venv(distributions: Distributions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a new venv holding the wheel with its ``[redis]`` extra, as ``pip`` installs it."""
    place = tmp_path_factory.mktemp("venv")
    return make_venv(place / "venv", place / "venv.log", f"{distributions.wheel}[redis]")


@pytest.fixture(scope="session")
def docs_redis_url() -> str:
    """Return the URL of the docs' Redis database, its ``events`` stream deleted."""
    url = os.environ.get("REDIS_URL")
    if not url:
        missing("REDIS_URL is not set (run scripts/test, or start scripts/services)")
    import redis

    url = urlsplit(url)._replace(path=f"/{DOCS_REDIS_DATABASE}").geturl()
    client = redis.Redis.from_url(url)
    try:
        client.delete("events")
    except redis.RedisError as exc:
        missing(f"Redis at {url} does not answer: {exc}")
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def reader_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a directory for the front of ``PATH``: ``redis-cli`` as in a terminal, on our Redis.

    The docs run ``redis-cli`` on the default ``localhost:6379``; this one talks to
    ``REDIS_URL`` and prints as it does on a terminal (``--no-raw``).
    """
    real = shutil.which("redis-cli")
    if real is None:
        missing("redis-cli not found (apt-get install redis-tools)")
    tools = tmp_path_factory.mktemp("tools")
    shim = tools / "redis-cli"
    shim.write_text(f'#!/bin/sh\nexec {real} -u "$REDIS_URL" --no-raw "$@"\n')
    shim.chmod(0o755)
    return tools


@pytest.fixture(scope="session")
def quickstart(
    fresh_venv: Path,
    reader_tools: Path,
    docs_redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Project]:
    """Yield the project that following ``docs/quickstart.md`` in the fresh venv leaves."""
    env = reader_environment(fresh_venv, reader_tools, {"REDIS_URL": docs_redis_url})
    project = Project(tmp_path_factory.mktemp("quickstart") / "site", env)
    project.directory.mkdir()
    project.follow(DOCS / RUN_AS_WRITTEN[0])
    yield project
