"""Follow a docs page as a reader would: write its files, run its commands and its shell blocks.

:class:`Project` is a directory and the fresh venv it runs in; :meth:`Project.follow` does a
page's blocks in order (see ``tests.newcomer.pages`` for the convention) and raises
:class:`PageFailed`, naming the block, at the first one that does not do what the page says.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from harness.process import Process

from .pages import Block, Command, output_matches, read_page
from .shell_session import ANSWER

#: How long one command may take (a pip install on a slow day).
COMMAND_TIMEOUT_S = 300.0
#: How long a command that follows a running one is repeated until it does what the page says.
SETTLE_S = 30.0
#: How long a running command may take to stop after Ctrl-C.
STOP_TIMEOUT_S = 30.0
#: Variables of the test process that a reader's shell would not have.
NOT_INHERITED = (
    "DJANGO_SETTINGS_MODULE",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "DATABASE_URL",
    "TEST_DATABASE_NAME",
    "TEST_EXTRA_APPS",
    "PYTEST_ADDOPTS",
)
SHELL_SESSION = Path(__file__).with_name("shell_session.py")


class PageFailed(AssertionError):
    """A block of a page did not do what the page says."""


def reader_environment(venv: Path, tools: Path, extra: dict[str, str]) -> dict[str, str]:
    """Return the environment of a reader's shell with ``venv`` active and ``tools`` first.

    Other venvs' ``bin`` directories leave ``PATH``, so that a command the venv lacks fails
    instead of running from the test suite's venv.
    """
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    path = [
        entry
        for entry in env.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry).parent / "pyvenv.cfg").exists()
    ]
    env["PATH"] = os.pathsep.join([str(tools), str(venv / "bin"), *path])
    env["VIRTUAL_ENV"] = str(venv)
    return {**env, **extra}


class Project:
    """A project directory, and the environment its commands run in."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory, self.env = directory, env

    def copy(self, directory: Path) -> Project:
        """Return a copy of this project in ``directory`` (a page that starts from it)."""
        shutil.copytree(self.directory, directory, symlinks=True)
        return Project(directory, self.env)

    def follow(self, page: Path) -> None:
        """Do every block of ``page`` in order; raise :class:`PageFailed` at the first misstep.

        Afterwards, commands left running get Ctrl-C and must exit with status 0, and
        ``manage.py check`` must pass: every file the page wrote imports.
        """
        with ExitStack() as stack:
            running: list[tuple[Command, Block, Process]] = []
            shell: _Shell | None = None
            for block in read_page(page):
                if block.kind == "file":
                    self._write(block)
                elif block.kind in {"python", "pycon"}:
                    shell = shell or stack.enter_context(self._shell(page))
                    shell.run(block)
                elif block.kind == "console":
                    for command in block.commands:
                        self._console(block, command, running, stack)
            for command, block, process in reversed(running):
                _stop(block, command, process)
        self.run("python manage.py check", where=f"{page.name} (after the page)")

    def run(self, command: str, where: str, output: tuple[str, ...] = ()) -> str:
        """Run ``command`` with bash in the project; return its output (stderr included).

        Raises :class:`PageFailed` if it exits non-zero or does not print ``output``.
        """
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=self.directory,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise PageFailed(f"{where}: `{command}` exited {done.returncode}:\n{done.stdout}")
        if output and not output_matches(output, done.stdout):
            expected = "\n".join(output)
            raise PageFailed(
                f"{where}: `{command}` printed\n{done.stdout}\nwhere the page shows\n{expected}"
            )
        return done.stdout

    def _write(self, block: Block) -> None:
        target = self.directory / block.path
        target.parent.mkdir(parents=True, exist_ok=True)
        text = block.text.split("\n", 1)[1] if block.append else block.text
        if block.append:
            with target.open("a") as file:
                file.write(f"\n\n{text}\n")
        else:
            target.write_text(text + "\n")

    def _console(
        self,
        block: Block,
        command: Command,
        running: list[tuple[Command, Block, Process]],
        stack: ExitStack,
    ) -> None:
        if command.keeps_running:
            process = Process(["bash", "-c", command.shell], env=self.env, cwd=self.directory)
            running.append((command, block, stack.enter_context(process)))
            return
        deadline = time.monotonic() + (SETTLE_S if running else 0)
        while True:
            for started, where, process in running:
                if not process.alive:
                    raise PageFailed(
                        f"{where.where}: `{started.shell}` stopped before the page's end "
                        f"(exit {process.returncode}):\n{process.tail()}"
                    )
            try:
                self.run(command.shell, block.where, command.output)
            except PageFailed:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            else:
                return

    @contextmanager
    def _shell(self, page: Path) -> Iterator[_Shell]:
        code = f"import runpy; runpy.run_path({str(SHELL_SESSION)!r}, run_name='__main__')"
        log = self.directory.parent / f"{page.stem}-shell.log"
        with log.open("w") as errors:
            process = subprocess.Popen(
                ["python", "manage.py", "shell", "-c", code],
                cwd=self.directory,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            try:
                yield _Shell(process, log)
            finally:
                assert process.stdin is not None
                process.stdin.close()
                process.wait(STOP_TIMEOUT_S)


class _Shell:
    """The page's ``manage.py shell``, running ``shell_session.py``."""

    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process, self.log = process, log

    def run(self, block: Block) -> None:
        """Run a python or pycon block; raise :class:`PageFailed` with the report if it fails."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"kind": block.kind, "source": block.text, "where": block.where}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = ""
        while not answer.startswith(ANSWER):
            answer = self.process.stdout.readline()
            if not answer:
                raise PageFailed(
                    f"{block.where}: the shell exited ({self.process.wait()}):\n"
                    f"{self.log.read_text()}"
                )
        result = json.loads(answer.removeprefix(ANSWER))
        if not result["ok"]:
            raise PageFailed(f"{block.where}: the {block.kind} block failed:\n{result['report']}")


def _stop(block: Block, command: Command, process: Process) -> None:
    process.send_signal(signal.SIGINT)
    try:
        status = process.wait(STOP_TIMEOUT_S)
    except TimeoutError as exc:
        raise PageFailed(f"{block.where}: `{command.shell}` ignored Ctrl-C: {exc}") from None
    if status != 0:
        raise PageFailed(
            f"{block.where}: `{command.shell}` exited {status} on Ctrl-C:\n{process.tail()}"
        )
