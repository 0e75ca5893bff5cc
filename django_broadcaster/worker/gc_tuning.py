"""Keeping Python's cyclic garbage collector out of a dedicated worker process's way.

Every batch the worker claims is a few thousand new container objects (rows, events, outcomes),
freed a moment later by reference counting. With Python's default thresholds they set off
several collections per batch, and the older generations' collections walk every object alive,
most of them Django's and the backends' own, which never become garbage: a share of the worker's
CPU time worth saving (docs/performance.md, "The garbage collector tuning").

:func:`tune_for_worker` moves the objects made at start-up out of the collector's sight
(``gc.freeze()``) and collects the youngest generation less often. The collector keeps running,
so reference cycles made later are still freed.
"""

from __future__ import annotations

import gc
import sys
from typing import Final

#: Container objects allocated (net of those freed) between two collections of the youngest
#: generation. Python's default (700; 2,000 from Python 3.13) is less than one batch's worth.
YOUNG_THRESHOLD: Final = 10_000


def tune_for_worker() -> None:
    """Tune the garbage collector of this process for the worker loop, once, before the loop.

    Collects once, so that start-up's garbage is freed rather than kept, then freezes every
    object alive and raises the youngest generation's threshold to :data:`YOUNG_THRESHOLD`. A
    higher threshold, or 0 (the automatic collection turned off), set before is kept. Frozen
    objects are never examined again: one that later ends up in a reference cycle nobody
    reaches stays in memory for good, and so does the cycle. Calling this again freezes what is
    alive then, a batch in flight included, hence once, before the loop.

    It changes the whole process: call it only from a process that runs nothing but the worker,
    such as ``outbox_worker``, after start-up. On a free-threaded build of Python, whose
    collector works differently, it does nothing.
    """
    if not _has_interpreter_lock():
        return
    gc.collect()
    gc.freeze()
    young, middle, oldest = gc.get_threshold()
    if young:
        gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, oldest)


def _has_interpreter_lock() -> bool:
    # sys._is_gil_enabled() is Python 3.13's; every earlier build has the lock.
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return is_gil_enabled is None or bool(is_gil_enabled())
