"""Run ``manage.py`` commands, ``outbox_worker`` above all, as subprocesses on the test database.

The processes are :class:`harness.process.Process` objects: use them as context managers, or
close them, so that a failed test leaves none running. Tests that start one need
``django_db(transaction=True)``, as a child sees only committed rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.db import connection

from harness.process import Process, django_command

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The line the worker logs once it is in its loop (``worker/loop.py``).
READY_LINE = "Outbox worker started"


def start_command(
    command: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    ready_line: str = "",
    name: str = "",
    log: Path | None = None,
) -> Process:
    """Start ``manage.py COMMAND ARGS`` with the test settings, on the current test database.

    ``env`` adds or overrides environment variables (``TEST_EXTRA_APPS``, see
    ``tests/settings.py``); ``ready_line``, ``name`` and ``log`` are given to :class:`Process`.
    """
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO_ROOT),
        "TEST_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        **(env or {}),
    }
    process = Process(
        django_command(command, *args),
        env=environment,
        cwd=REPO_ROOT,
        ready_line=ready_line,
        name=name or command,
        log=log,
    )
    return process.start()


def start_worker(
    *args: str,
    backends: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    name: str = "",
    log: Path | None = None,
) -> Process:
    """Start a worker process with ``args``, delivering to ``backends`` (a BACKENDS dict).

    ``settings`` adds other ``BROADCASTER`` keys, with durations in seconds; ``env``, ``name``
    and ``log`` are as for :func:`start_command`. Its ready line is :data:`READY_LINE`.
    """
    worker_env = {
        "TEST_BROADCASTER_BACKENDS": json.dumps(backends),
        "TEST_BROADCASTER_SETTINGS": json.dumps(settings or {}),
        **(env or {}),
    }
    return start_command(
        "outbox_worker", *args, env=worker_env, ready_line=READY_LINE, name=name, log=log
    )
