"""The benchmarks' worker subprocesses: this tree's ``outbox_worker``, and running a group of them.

The processes are :class:`harness.process.Process` objects, shared with the tests.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.process import Process, django_command

REPO = Path(__file__).resolve().parent.parent
#: The line the worker logs when it enters its loop (``worker/loop.py``).
READY_LINE = "Outbox worker started"
#: How long a worker may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0


def current_worker(backends: Mapping[str, Any], *options: str) -> Process:
    """Return (not started) ``manage.py outbox_worker OPTIONS`` of this repository's package.

    ``backends`` is the ``BROADCASTER["BACKENDS"]`` dict; the databases come from the environment
    (see :mod:`benchmarks.settings`).
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_BACKENDS": json.dumps(backends),
    }
    command = django_command("outbox_worker", *options)
    return Process(command, env=env, cwd=REPO, ready_line=READY_LINE)


@contextmanager
def running(workers: Sequence[Process]) -> Iterator[None]:
    """Start ``workers``, wait until every one is in its loop, and stop them all on exit.

    Raises ``RuntimeError`` when a worker does not start, or exits with an error after the
    block.
    """
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready()
        yield
    finally:
        codes = {worker: _stop(worker) for worker in workers if worker.started}
    for worker, code in codes.items():
        if code not in (0, -signal.SIGTERM):
            raise RuntimeError(f"worker exited with {code}: {worker.name}\n{worker.tail()}")


def _stop(worker: Process) -> int | None:
    """SIGTERM ``worker`` and return its exit status, killing it if it overstays."""
    try:
        return worker.stop(STOP_TIMEOUT_S)
    except TimeoutError:
        return worker.returncode
