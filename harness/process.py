"""Run a command as a subprocess, with its output (stdout and stderr) collected by a thread.

A thread reads the output line by line from the start, so a long run never fills the pipe and
blocks, and a caller can wait for a line (a worker's "ready" line) as soon as it is printed,
without polling. The process is a context manager that kills it on exit, so a failed test or
benchmark never leaves it running.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

#: How long to wait for a program to print its ready line (a cold Django start on a busy machine).
START_TIMEOUT_S = 120.0
#: How long to wait for a program to exit, after a signal or on its own.
EXIT_TIMEOUT_S = 120.0
#: How long the output may go on after the process has exited (a child that kept the pipe).
OUTPUT_END_TIMEOUT_S = 10.0
#: How many lines of output a failure message ends with.
TAIL_LINES = 40


def django_command(command: str, *args: str, python: str = sys.executable) -> list[str]:
    """Return the command line of ``manage.py COMMAND ARGS``: ``python -m django COMMAND ARGS``.

    The settings module comes from ``DJANGO_SETTINGS_MODULE`` in the process's environment.
    """
    return [python, "-m", "django", command, *args]


class Process:
    """A subprocess whose output a thread collects; call :meth:`start`, then :meth:`close`.

    ``env`` is the whole environment of the child, to which ``PYTHONUNBUFFERED=1`` is added so
    that Python programs print each line when they write it. ``ready_line`` is a regular
    expression for the line the program prints once it is ready (:meth:`wait_ready`); ``name``
    stands for the process in messages (default: its command line); when ``log`` is given, every
    line is appended to that file too, for a post-mortem. ``with Process(...) as process:``
    starts it unless started and closes it at the end.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        ready_line: str = "",
        name: str = "",
        log: Path | None = None,
    ) -> None:
        self.command = list(command)
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.cwd, self.ready_line, self.log = cwd, ready_line, log
        self.name = name or shlex.join(self.command)
        self._lines: list[str] = []
        self._changed = threading.Condition()  # notified on each line and at the end of output
        self._output_ended = False
        self._popen: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> Process:
        """Start the process and the thread that reads its output; return ``self``.

        Raises ``RuntimeError`` when it was started already.
        """
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was started already")
        self._popen = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, name=f"output of {self.name}")
        self._reader.daemon = True
        self._reader.start()
        return self

    @property
    def started(self) -> bool:
        """Return whether :meth:`start` was called."""
        return self._popen is not None

    @property
    def alive(self) -> bool:
        """Return whether the process was started and has not exited yet."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def pid(self) -> int:
        """Return the process id. Raises ``RuntimeError`` before :meth:`start`."""
        return self._started().pid

    @property
    def returncode(self) -> int | None:
        """Return the exit status (``-N`` for signal N), or ``None`` while it runs."""
        return self._started().poll()

    def wait_for_line(self, pattern: str, timeout: float = START_TIMEOUT_S) -> str:
        """Wait for a line of output that matches the regular expression ``pattern``; return it.

        Lines printed before the call count. Raises ``RuntimeError`` when the output ends (the
        process exited) without such a line, ``TimeoutError`` after ``timeout`` seconds; both
        messages end with the last lines of output.
        """
        self._started()
        search = re.compile(pattern).search
        checked, found = 0, ""

        def found_or_ended() -> bool:
            nonlocal checked, found
            found = next((line for line in self._lines[checked:] if search(line)), "")
            checked = len(self._lines)
            return bool(found) or self._output_ended

        with self._changed:
            if not self._changed.wait_for(found_or_ended, timeout):
                raise TimeoutError(self._failure(f"printed no line matching {pattern!r}"))
        if not found:
            status = self._exit_status_soon()
            raise RuntimeError(
                self._failure(f"exited ({status}) without a line matching {pattern!r}")
            )
        return found

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> str:
        """Wait for the ready line (see :meth:`wait_for_line`); return it.

        Raises ``ValueError`` when the process has no ``ready_line``.
        """
        if not self.ready_line:
            raise ValueError(f"{self.name} has no ready line to wait for")
        return self.wait_for_line(self.ready_line, timeout)

    def send_signal(self, signum: int) -> None:
        """Send signal ``signum`` to the process, unless it has exited."""
        if self.alive:
            self._started().send_signal(signum)

    def wait(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        """Wait for the process to exit and for the end of its output; return its exit status.

        When it is still running after ``timeout`` seconds, kills it and raises ``TimeoutError``
        with its last lines of output.
        """
        popen = self._started()
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
            self._join_reader()
            raise TimeoutError(self._failure(f"did not exit within {timeout:g} s")) from None
        self._join_reader()
        return popen.returncode

    def stop(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        """Send SIGTERM (a worker's graceful stop) and :meth:`wait`; return the exit status."""
        self.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        """Send SIGKILL and wait for the process to go; return its exit status."""
        self.send_signal(signal.SIGKILL)
        return self.wait()

    def close(self) -> None:
        """Kill the process if it still runs. Safe to call twice, or before :meth:`start`."""
        if self.started:
            self.kill()

    def output(self) -> str:
        """Return every line printed so far, joined by newlines."""
        with self._changed:
            return "\n".join(self._lines)

    def lines(self, pattern: str = "") -> list[str]:
        """Return the lines printed so far that match the regular expression ``pattern``."""
        search = re.compile(pattern).search
        with self._changed:
            return [line for line in self._lines if search(line)]

    def tail(self, count: int = TAIL_LINES) -> str:
        """Return the last ``count`` lines printed so far, for failure messages."""
        with self._changed:
            return "\n".join(self._lines[-count:])

    def __enter__(self) -> Process:
        return self if self.started else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Process {self.name!r} pid={self._popen.pid if self._popen else None}>"

    def _started(self) -> subprocess.Popen[str]:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._popen

    def _failure(self, what: str) -> str:
        return f"{self.name} {what}; its last lines:\n{self.tail()}"

    def _read(self) -> None:
        stdout = self._started().stdout
        assert stdout is not None
        with ExitStack() as files:
            log = files.enter_context(open(self.log, "a", buffering=1)) if self.log else None
            for line in stdout:
                if log is not None:
                    log.write(line)
                with self._changed:
                    self._lines.append(line.rstrip("\r\n"))
                    self._changed.notify_all()
        with self._changed:
            self._output_ended = True
            self._changed.notify_all()

    def _exit_status_soon(self) -> int | None:
        """Return the exit status once the output has ended: the process is about to exit."""
        try:
            return self._started().wait(OUTPUT_END_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(OUTPUT_END_TIMEOUT_S)
