"""``python -m benchmarks --compare REF``: every figure of commit REF and of this tree, together.

REF is checked out into a detached worktree, ``.bench/compare-<short hash>``, kept for later
comparisons. HEAD is this working tree as it is, uncommitted changes included. The two take
turns running ``python -m benchmarks --rounds 1`` on one set of services, REF first in odd
rounds and HEAD first in even ones, each as a subprocess in its own tree: it imports that tree's
packages and starts its workers from there (``workers.REPO``). Their printed tables are parsed,
as ``report.format_table`` printed them at ec70c10, so an older REF needs no new option.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from .report import format_number, markdown_table
from .services import running_services

ROOT: Final = Path(__file__).resolve().parent.parent
#: How much worse than REF a figure of HEAD may be and still count as unchanged.
TOLERANCE: Final = 0.05
Better = Literal["higher", "lower"]
#: Units (before any "/event") of figures that are better lower: times and sizes.
_COSTS: Final = frozenset({"ns", "µs", "us", "ms", "s", "B", "KiB", "MiB", "GiB"})
_GOAL_DIRECTIONS: Final[Mapping[str, Better]] = {">=": "higher", "<=": "lower", "<": "lower"}
#: Print where each package would be imported from, without importing it (that needs Django).
_FIND_PACKAGES: Final = (
    "import importlib.util as u; "
    "print(u.find_spec('benchmarks').origin); print(u.find_spec('django_broadcaster').origin)"
)


@dataclass(frozen=True)
class Reading:
    """One row of a run's table: the measured value, its unit and its goal's comparison."""

    value: float
    unit: str
    comparison: str = ""  # ">=", "<=" or "<"; empty for a figure without a goal


@dataclass(frozen=True)
class Comparison:
    """One figure's measured value in every round of REF and of HEAD (none where it is absent)."""

    name: str
    unit: str
    better: Better | None
    ref: tuple[float, ...]
    head: tuple[float, ...]

    @property
    def ratios(self) -> list[float]:
        """Return HEAD / REF of every round, leaving out rounds where REF measured zero."""
        return [head / ref for ref, head in zip(self.ref, self.head, strict=False) if ref]

    @property
    def within(self) -> bool:
        """Return whether the median ratio is within :data:`TOLERANCE` or better (no ratio: no)."""
        ratios = self.ratios
        return bool(ratios) and within_tolerance(statistics.median(ratios), self.better)


def compare(ref: str, only: Sequence[str], *, smoke: bool, rounds: int) -> int:
    """Measure REF and this tree in ``rounds`` alternating rounds, print the table; return 0.

    Returns 1, after saying why, when REF cannot be checked out, the services do not start or a
    run fails. A figure outside the tolerance shows as ``NO`` and leaves the status at 0.
    """
    started = time.monotonic()
    arguments = ["--rounds", "1", *(f"--only={name}" for name in only)]
    arguments += ["--smoke"] if smoke else []
    try:
        short, ref_tree = ref_worktree(ref)
        trees = {"REF": ref_tree, "HEAD": ROOT}
        with running_services():
            outputs = alternate(trees, arguments, rounds)
    except RuntimeError as exc:
        _log(f"FAILED: {exc}")
        return 1
    tables = {label: [parse_table(output) for output in outputs[label]] for label in trees}
    print(
        f"REF = {ref} ({short}, in {ref_tree}); HEAD = {ROOT} as it is; "
        f"{'smoke' if smoke else 'full'} runs, {rounds} round(s), "
        f"{time.monotonic() - started:.0f} s\n{outputs['HEAD'][0].partition('; ')[0]}\n"
    )
    print(format_comparisons(summarize(tables["REF"], tables["HEAD"])))
    return 0


def ref_worktree(ref: str) -> tuple[str, Path]:
    """Return the short hash of commit ``ref`` and a clean, detached worktree of it in ``.bench/``.

    The worktree is made unless there. Raises ``RuntimeError`` when git cannot resolve ``ref``,
    or the directory holds anything else: another commit, local changes, no worktree of its own.
    """
    sha = _git(ROOT, "rev-parse", "--verify", f"{ref}^{{commit}}")
    short = _git(ROOT, "rev-parse", "--short", sha)
    path = ROOT / ".bench" / f"compare-{short}"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        (path.parent / ".gitignore").write_text("*\n")  # as legacy.py: out of git, and all below
        _git(ROOT, "worktree", "add", "--detach", str(path), sha)
    top, head = _git(path, "rev-parse", "--show-toplevel", "HEAD").splitlines()
    if Path(top) != path or head != sha or _git(path, "status", "--porcelain"):
        raise RuntimeError(
            f"{path} is not a clean worktree of {sha}; remove it with "
            f"`git worktree remove --force {path}` and run again"
        )
    return short, path


def alternate(
    trees: Mapping[str, Path], arguments: Sequence[str], rounds: int
) -> dict[str, list[str]]:
    """Run each tree's benchmarks once a round in :func:`round_order`; return what they printed.

    Raises ``RuntimeError`` when a tree would import another's code or a run fails.
    """
    for label, tree in trees.items():
        check_own_code(label, tree)
    outputs: dict[str, list[str]] = {label: [] for label in trees}
    for index in range(rounds):
        for label in round_order(index):
            outputs[label].append(run(label, trees[label], arguments, index + 1))
    return outputs


def round_order(index: int) -> tuple[str, str]:
    """Return the trees in their order in round ``index``: REF first when it is even (from 0)."""
    return ("REF", "HEAD") if index % 2 == 0 else ("HEAD", "REF")


def check_own_code(label: str, tree: Path) -> None:
    """Raise ``RuntimeError`` unless Python started as a run in ``tree`` imports its packages.

    An editable install of another clone must not come first: the venv's is of one clone.
    """
    found = _python(tree, "-c", _FIND_PACKAGES).stdout.split()
    strays = [origin for origin in found if Path(origin).parent.parent != tree]
    if len(found) != 2 or strays:
        raise RuntimeError(f"{label} in {tree} would not import its own packages: {found}")
    _log(f"{label} imports {' and '.join(found)}")


def run(label: str, tree: Path, arguments: Sequence[str], round_number: int) -> str:
    """Run ``python -m benchmarks ARGUMENTS`` in ``tree``; return what it printed.

    Its progress goes to stderr as it comes, its table once it ends. Raises ``RuntimeError``
    when it exits with an error.
    """
    _log(f"round {round_number}: {label} ({tree})")
    child = _python(tree, "-m", "benchmarks", *arguments)
    if child.stdout:
        _log(f"round {round_number}: {label} printed\n{child.stdout}")
    if status := child.returncode:
        raise RuntimeError(f"{label} ({tree}) exited with {status} in round {round_number}")
    return child.stdout


def _python(tree: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter in ``tree``, in this environment (with the services), ``tree`` first.

    ``python -m`` and ``-c`` put the working directory first on the path anyway; ``PYTHONPATH``
    replaces whatever path the caller set, for subprocesses started elsewhere.
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, *arguments]
    return subprocess.run(command, cwd=tree, env=env, stdout=subprocess.PIPE, text=True)


def parse_table(output: str) -> dict[str, Reading]:
    """Return every figure of a benchmark run's printed table, by name.

    Reads the rows of ``report.format_table``: ``| figure | measured | reference | ratio | goal |
    met? |``, whose measured cell is a number and a unit (``12,345 ev/s``). Other lines are
    skipped. Raises ``ValueError`` when a measured cell does not start with a number.
    """
    readings = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("figure", "---"):
            continue
        number, _, unit = cells[1].partition(" ")
        goal = cells[4].split()
        comparison = goal[1] if len(goal) == 3 else ""
        readings[cells[0]] = Reading(float(number.replace(",", "")), unit, comparison)
    return readings


def summarize(
    ref: Sequence[Mapping[str, Reading]], head: Sequence[Mapping[str, Reading]]
) -> list[Comparison]:
    """Return one comparison per figure of either tree's tables, in the order REF printed them."""
    comparisons = []
    for name in dict.fromkeys(name for table in [*ref, *head] for name in table):
        ref_values, head_values = (
            tuple(table[name].value for table in tables if name in table) for tables in (ref, head)
        )
        sample = next(table[name] for table in [*head, *ref] if name in table)
        direction = better(sample.unit, sample.comparison)
        comparisons.append(Comparison(name, sample.unit, direction, ref_values, head_values))
    return comparisons


def better(unit: str, comparison: str = "") -> Better | None:
    """Return which way a figure is better: ``"higher"``, ``"lower"``, or ``None`` when unknown.

    The unit decides: a rate (``ev/s``) is better higher; a time or a size (``ms``, ``µs/ev``,
    ``MiB``) lower. Otherwise the comparison of the figure's goal does (``>=``: higher).
    """
    if unit.endswith("/s"):
        return "higher"
    if unit.partition("/")[0] in _COSTS:
        return "lower"
    return _GOAL_DIRECTIONS.get(comparison)


def within_tolerance(ratio: float, better: Better | None) -> bool:
    """Return whether HEAD/REF = ``ratio`` is no more than :data:`TOLERANCE` worse than 1.

    Worse is lower when higher is better and the reverse; either way when ``better`` is ``None``.
    """
    return (ratio >= 1 - TOLERANCE or better == "lower") and (
        ratio <= 1 + TOLERANCE or better == "higher"
    )


def format_comparisons(comparisons: Sequence[Comparison]) -> str:
    """Return the comparisons as a Markdown table: medians, median ratio, its range, verdict."""
    verdict = f"within {TOLERANCE:.0%}?"
    header = ("figure", "REF median", "HEAD median", "HEAD/REF", "range", "better", verdict)
    return markdown_table(header, [_cells(comparison) for comparison in comparisons])


def _cells(comparison: Comparison) -> tuple[str, ...]:
    ratios = comparison.ratios
    ratio = f"{statistics.median(ratios):.3f}" if ratios else ""
    if not comparison.ref or not comparison.head:
        ratio = f"only in {'HEAD' if comparison.head else 'REF'}"
    return (
        comparison.name,
        _median(comparison.ref, comparison.unit),
        _median(comparison.head, comparison.unit),
        ratio,
        f"{min(ratios):.3f}-{max(ratios):.3f}" if ratios else "",
        comparison.better or "either",
        "yes" if comparison.within else "NO",
    )


def _median(values: Sequence[float], unit: str) -> str:
    return f"{format_number(statistics.median(values))} {unit}" if values else ""


def _git(cwd: Path, *arguments: str) -> str:
    """Return git's output, stripped; raise ``RuntimeError`` with git's message when it fails."""
    done = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(arguments)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _log(message: str) -> None:
    print(f"[compare] {message}", file=sys.stderr, flush=True)
