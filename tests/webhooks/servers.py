"""Start the webhook tests' receivers as processes of their own, on loopback.

:func:`start_view_receiver` serves the project's receiving view with gunicorn, on the test
database, running :mod:`tests.webhooks.handlers`; :func:`start_sdk_receiver` runs
:mod:`tests.webhooks.sdk_receiver`. Both return a started :class:`harness.process.Process`, ready.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from django.db import connection

from harness.process import Process
from tests.settings import WEBHOOK_SECRET

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_view_receiver(port: int, handled_file: Path, *, workers: int = 2) -> Process:
    """Serve ``/webhooks/`` on ``port`` with gunicorn; handlers append ids to ``handled_file``.

    Its URL is ``http://127.0.0.1:PORT/webhooks/``; each request is an access log line,
    ``"POST /webhooks/ HTTP/1.1" <status>``.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO_ROOT),
        "TEST_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        "TEST_EXTRA_APPS": json.dumps(["tests.webhooks"]),
        "WEBHOOK_HANDLED_FILE": str(handled_file),
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
        *("--workers", str(workers), "--timeout", "60", "--graceful-timeout", "5"),
        *("--access-logfile", "-", "--access-logformat", '"%(r)s" %(s)s'),
        *("--preload", "django.core.wsgi:get_wsgi_application()"),
    ]
    process = Process(
        command, env=env, cwd=REPO_ROOT, ready_line="Booting worker", name="view-receiver"
    )
    process.start().wait_ready()
    return process


def start_sdk_receiver(
    port: int, behaviour: Path | None = None, secret: str = WEBHOOK_SECRET
) -> Process:
    """Run the SDK-only receiver on ``port``, behaving as the file ``behaviour`` says, if given."""
    command = [sys.executable, "tests/webhooks/sdk_receiver.py", str(port), secret]
    command += [str(behaviour)] if behaviour else []
    process = Process(
        command,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        cwd=REPO_ROOT,
        ready_line="listening on",
        name="sdk-receiver",
    )
    process.start().wait_ready()
    return process


def handled_ids(handled_file: Path) -> list[str]:
    """Return the ids the view receiver's handlers were called with, in order."""
    if not handled_file.exists():
        return []
    return handled_file.read_text(encoding="utf-8").split()


def sdk_received(process: Process) -> list[str]:
    """Return the lines ``received <id> <type> <data>`` the SDK receiver printed, in order."""
    return process.lines(r"^received ")
