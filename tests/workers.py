"""Run ``manage.py outbox_worker`` as a real subprocess against the current test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from django.db import connection

REPO_ROOT = Path(__file__).resolve().parent.parent


def start_worker(
    *args: str,
    backends: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    output: IO[str] | None = None,
) -> subprocess.Popen[str]:
    """Start a worker process with ``args``, delivering to ``backends`` (a BACKENDS dict).

    ``settings`` adds other ``BROADCASTER`` keys, with durations in seconds; ``env`` adds or
    overrides environment variables. Output goes to a pipe that :func:`finish` reads, or to the
    file ``output`` (for long runs, whose output could fill a pipe and block the worker).
    """
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO_ROOT),
        "TEST_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        "TEST_BROADCASTER_BACKENDS": json.dumps(backends),
        "TEST_BROADCASTER_SETTINGS": json.dumps(settings or {}),
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "django", "outbox_worker", *args],
        cwd=REPO_ROOT,
        env=environment,
        stdout=output or subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; raise ``TimeoutError`` after ``timeout`` seconds.

    For states of another process that offer nothing to block on (a file appearing).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting {timeout} s for {what or condition}")
        time.sleep(0.02)


def finish(process: subprocess.Popen[str], timeout: float = 120.0) -> str:
    """Wait for ``process`` to exit and return its output; kill it if it overstays."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"worker did not exit within {timeout} s:\n{output}") from None
    return output
