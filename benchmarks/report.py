"""Figures and the table that shows them: figure | measured | reference | ratio | goal | met?"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

_COMPARISONS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Goal:
    """A bound on a figure's measured value or on its ratio (measured / reference)."""

    comparison: Literal[">=", "<=", "<"]
    value: float
    on: Literal["measured", "ratio"] = "ratio"

    def __post_init__(self) -> None:
        # benchmarks/ is not type-checked; a goal that names anything else is never judged.
        if self.comparison not in _COMPARISONS or self.on not in ("measured", "ratio"):
            raise ValueError(f"a goal compares with >=, <= or <, on measured or ratio: {self}")

    def met(self, figure: Figure) -> bool | None:
        """Return whether ``figure`` meets the goal (``None`` when it has no ratio to judge)."""
        value = figure.measured if self.on == "measured" else figure.ratio
        return None if value is None else _COMPARISONS[self.comparison](value, self.value)

    def __str__(self) -> str:
        target = "ratio" if self.on == "ratio" else "measured"
        return f"{target} {self.comparison} {self.value:g}"


@dataclass(frozen=True)
class Figure:
    """One measured figure; ``reference`` was measured in the same run, side by side."""

    name: str
    measured: float
    unit: str
    reference: float | None = None
    reference_name: str = ""
    goal: Goal | None = None

    @property
    def ratio(self) -> float | None:
        """Return measured / reference, or ``None`` without a reference."""
        return None if not self.reference else self.measured / self.reference


def format_table(figures: Sequence[Figure]) -> str:
    """Return the figures as a Markdown table (readable as plain text too)."""
    header = ("figure", "measured", "reference", "ratio", "goal", "met?")
    return markdown_table(header, [_cells(figure) for figure in figures])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return ``header`` and ``rows`` as a Markdown table whose columns line up."""
    table = [header, tuple("---" for _ in header), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in table
    )


def _cells(figure: Figure) -> tuple[str, ...]:
    reference = ""
    if figure.reference is not None:
        reference = f"{format_number(figure.reference)} {figure.unit} ({figure.reference_name})"
    met = figure.goal.met(figure) if figure.goal else None
    return (
        figure.name,
        f"{format_number(figure.measured)} {figure.unit}",
        reference,
        "" if figure.ratio is None else f"{figure.ratio:.2f}",
        str(figure.goal or ""),
        {True: "yes", False: "NO", None: ""}[met],
    )


def format_number(value: float) -> str:
    """Return ``value`` as the table shows it: whole from 100 up, else three significant digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
