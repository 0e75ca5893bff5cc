"""Worker subprocesses: start them, wait until they are in their loop, watch and stop them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: The line the worker logs when it enters its loop (``worker/loop.py``).
READY_LINE = "Outbox worker started"


class WorkerProcess:
    """A worker subprocess whose output (stdout and stderr) a thread collects line by line.

    ``ready_line`` is a fragment of the line the worker prints once it is in its loop.
    """

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], cwd: Path, ready_line: str
    ) -> None:
        self.command, self.env, self.cwd, self.ready_line = (
            list(command),
            dict(env),
            cwd,
            ready_line,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the process and the thread that reads its output."""
        self._process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait for the ready line; raise ``RuntimeError`` (with the output) if it never comes."""
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {self.command}\n{self.output()}")

    def stop(self, timeout_s: float = 30.0) -> int:
        """Send SIGTERM (the graceful stop), wait for the exit and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def rss_mb(self) -> float:
        """Return the resident set size of the process in MiB (read from ``/proc``)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def output(self) -> str:
        """Return the last 40 lines the process printed."""
        return "\n".join(self.lines[-40:])

    @property
    def process(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise RuntimeError("the worker was not started")
        return self._process

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if self.ready_line in line:
                self._ready.set()


def current_worker(backends: Mapping[str, Any], *options: str) -> WorkerProcess:
    """Return (not started) ``manage.py outbox_worker OPTIONS`` of this repository's package.

    ``backends`` is the ``BROADCASTER["BACKENDS"]`` dict; the databases come from the environment
    (see :mod:`benchmarks.settings`).
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_BACKENDS": json.dumps(backends),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "django", "outbox_worker", *options]
    return WorkerProcess(command, env, REPO, READY_LINE)


@contextmanager
def running(workers: Sequence[WorkerProcess]) -> Iterator[None]:
    """Start ``workers``, wait until every one is in its loop, and stop them all on exit.

    Raises ``RuntimeError`` when a worker exits with an error after the block.
    """
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready()
        yield
    finally:
        codes = {worker: worker.stop() for worker in workers if worker._process is not None}
    for worker, code in codes.items():
        if code not in (0, -signal.SIGTERM):
            raise RuntimeError(f"worker exited with {code}: {worker.command}\n{worker.output()}")
