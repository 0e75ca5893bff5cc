"""Read a docs page's code blocks, and what each one asks the reader to do.

The convention (``docs/contributing.md``, "Docs that run") is read here:

- a block whose first line is ``# <path>`` is the whole of that file, and ``# at the end of
  <path>`` is added at the end of it, the path taken from the project directory (where
  ``manage.py`` is);
- a ``python`` block without such a line is a fragment, and a ``pycon`` block a session: both
  run in the page's one ``manage.py shell``, in page order, which checks a session's output;
- a ``console`` block holds commands after ``$ ``, each followed by the output it must print
  (none shown: not checked); ``...`` in an output line stands for any text, alone on its line
  for any lines; a command ending in ``# runs until Ctrl-C`` is left running;
- a block whose first line is ``# not run: <why>`` is skipped, and any other language is prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: The pages run as written, in this order, the quickstart first: every other page starts from
#: the project it leaves.
RUN_AS_WRITTEN = (
    "quickstart.md",
    "events.md",
    "handlers.md",
    "testing.md",
    "routing.md",
    "dead-letters.md",
)
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
WHOLE_FILE = re.compile(r"# (?P<path>[\w./-]+\.\w+)")
AT_THE_END = re.compile(r"# at the end of (?P<path>[\w./-]+\.\w+)")
NOT_RUN = re.compile(r"# not run: \S.*")
KEEPS_RUNNING = "# runs until Ctrl-C"
PROMPT = "$ "


@dataclass(frozen=True)
class Command:
    """A console command, the output it must print (empty: unchecked), and whether it stays."""

    line: str
    output: tuple[str, ...] = ()
    keeps_running: bool = False

    @property
    def shell(self) -> str:
        """Return the command as bash runs it (a trailing comment is only for the reader)."""
        return self.line.removesuffix(KEEPS_RUNNING).rstrip()


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and text, and what it asks for."""

    page: str
    line: int
    language: str
    text: str
    path: str = ""
    append: bool = False
    commands: tuple[Command, ...] = field(default=())

    @property
    def where(self) -> str:
        """Return ``page.md:LINE``, the block's first line, for messages."""
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        """Return ``file``, ``python``, ``pycon``, ``console``, ``skipped`` or ``prose``."""
        first = self.text.split("\n", 1)[0]
        if NOT_RUN.fullmatch(first):
            return "skipped"
        if self.path:
            return "file"
        if self.language in {"python", "pycon", "console"}:
            return self.language
        return "prose"


def read_page(path: Path) -> list[Block]:
    """Return the fenced code blocks of the MyST page at ``path``, in page order."""
    blocks, lines = [], path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        start = index
        if not opening or opening["info"].startswith("{") and "code" not in opening["info"]:
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body = []
        while index < len(lines) and not _closes(lines[index], fence):
            body.append(lines[index][indent:])
            index += 1
        index += 1
        language = opening["info"].strip().removeprefix("{code-block}").strip()
        blocks.append(_block(path.name, start, language, "\n".join(body)))
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _block(page: str, line: int, language: str, text: str) -> Block:
    first = text.split("\n", 1)[0]
    if found := AT_THE_END.fullmatch(first):
        return Block(page, line, language, text, found["path"], append=True)
    if (found := WHOLE_FILE.fullmatch(first)) and language != "console":
        return Block(page, line, language, text, found["path"])
    commands = tuple(_commands(text)) if language == "console" else ()
    return Block(page, line, language, text, commands=commands)


def _commands(text: str) -> list[Command]:
    commands: list[Command] = []
    for line in text.splitlines():
        if line.startswith(PROMPT):
            command = line.removeprefix(PROMPT)
            commands.append(Command(command, (), command.endswith(KEEPS_RUNNING)))
        elif commands:
            last = commands[-1]
            commands[-1] = Command(last.line, (*last.output, line), last.keeps_running)
    return commands


def output_matches(expected: tuple[str, ...], actual: str) -> bool:
    """Return whether ``actual`` is the ``expected`` output, ``...`` standing for any text.

    A line that is only ``...`` stands for any number of lines. Trailing spaces and blank
    lines at either end do not count.
    """
    pattern = "".join(_line_pattern(line.rstrip()) for line in _trimmed(list(expected)))
    text = "".join(line.rstrip() + "\n" for line in _trimmed(actual.splitlines()))
    return re.fullmatch(pattern, text) is not None


def _line_pattern(line: str) -> str:
    if line.strip() == "...":
        return r"(?:[^\n]*\n)*"
    return "[^\n]*".join(re.escape(part) for part in line.split("...")) + "\n"


def _trimmed(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines
