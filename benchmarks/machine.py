"""The machine's CPU time, every process's together, read from ``/proc/stat`` (Linux).

A drain's speed depends on how much of the machine one worker leaves idle: on two cores,
PostgreSQL, Redis and one worker's threads keep more than one core busy, and a second worker
can only use what is left. The scale-out figures read the busy time before and after each
drain to show that (see docs/performance.md, "Two workers on two cores").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

STAT: Final = Path("/proc/stat")
#: The columns of the ``cpu`` line that count work: user, nice, system, irq, softirq.
#: Idle and I/O wait are no work; steal is time the hypervisor gave to another machine; guest
#: time is already in user time.
_BUSY_COLUMNS: Final = (0, 1, 2, 5, 6)


def busy_cpu_seconds(stat: str | None = None) -> float:
    """Return the CPU time, in seconds, that every core has spent working since boot.

    ``stat`` is the text of ``/proc/stat``, read when not given. Raises ``OSError`` where
    there is no ``/proc/stat`` (not Linux), ``ValueError`` when its first line is not the
    ``cpu`` total.
    """
    first = (STAT.read_text() if stat is None else stat).split("\n", 1)[0].split()
    if not first or first[0] != "cpu":
        raise ValueError(f"/proc/stat does not start with the cpu total: {first[:1]}")
    ticks = [int(value) for value in first[1:]]
    return sum(ticks[column] for column in _BUSY_COLUMNS) / os.sysconf("SC_CLK_TCK")


def cores() -> int:
    """Return how many cores are online: those whose work :func:`busy_cpu_seconds` counts.

    Every one of them, not only those this process may run on: the services and the workers
    run where the system puts them.
    """
    return os.cpu_count() or 1


def process_cpu_seconds(pid: int, stat: str | None = None) -> float:
    """Return the CPU time (user and system), in seconds, process ``pid`` has spent so far.

    ``stat`` is the text of ``/proc/PID/stat``, read when not given. Raises ``OSError`` when
    the process is gone or there is no ``/proc``.
    """
    text = Path(f"/proc/{pid}/stat").read_text() if stat is None else stat
    # The command name, in parentheses, may hold spaces: the fields start after its ")".
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
