"""The dashboard's chart of the last hour, as shapes for an SVG template (no script, no CDN).

One pair of bars a minute, published and failed side by side; the scale's top is a round
number at or above the busiest minute, with a tick at its half when that is a whole number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .dashboard import Minute

WIDTH: Final = 720
HEIGHT: Final = 180
LEFT: Final = 48  # room for the scale's numbers
BOTTOM: Final = 24  # room for the times
TOP: Final = 8
BAR: Final = 4.5  # each bar's width; a minute is 12 wide


@dataclass(frozen=True)
class Bar:
    """One rectangle, with the text a pointer over it shows."""

    x: float
    y: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    """A label on an axis, at ``position`` (x for times, y for counts)."""

    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    """The shapes of the chart of ``minutes``; ``summary`` says it in words."""

    published: list[Bar]
    failed: list[Bar]
    counts: list[Tick]
    times: list[Tick]
    summary: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bar: float = BAR

    @property
    def baseline(self) -> int:
        """Return the y of the axis the bars stand on."""
        return self.height - BOTTOM


def chart(minutes: Sequence[Minute]) -> Chart:
    """Return the chart of ``minutes`` (oldest first; times labelled in UTC)."""
    peak = max((max(m.published, m.failed) for m in minutes), default=0)
    top = _scale_top(peak)
    plot = HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / max(len(minutes), 1)

    def bar(index: int, count: int, offset: float, what: str, minute: Minute) -> Bar:
        height = plot * count / top
        title = f"{minute.start:%H:%M} UTC: {count} {what}"
        return Bar(LEFT + index * step + offset, HEIGHT - BOTTOM - height, height, title)

    published = [bar(i, m.published, 1, "published", m) for i, m in enumerate(minutes)]
    failed = [bar(i, m.failed, 1 + BAR, "failed", m) for i, m in enumerate(minutes)]
    parts = (0, 0.5, 1) if top % 2 == 0 else (0, 1)  # no tick at 2.5 events
    counts = [Tick(HEIGHT - BOTTOM - plot * part, f"{top * part:g}") for part in parts]
    times = [
        Tick(LEFT + i * step, f"{m.start:%H:%M}") for i, m in enumerate(minutes) if i % 15 == 0
    ]
    total_published = sum(m.published for m in minutes)
    total_failed = sum(m.failed for m in minutes)
    summary = (
        f"Over the last {len(minutes)} minutes: {total_published} published, "
        f"{total_failed} failed; at most {peak} of either in one minute."
    )
    return Chart(published, failed, counts, times, summary)


def _scale_top(peak: int) -> int:
    """Return the first of 1, 2, 5, 10, 20, 50, 100... that is at least ``peak``."""
    top = 1
    while top < peak:
        top = top * 5 // 2 if str(top)[0] == "2" else top * 2
    return top
