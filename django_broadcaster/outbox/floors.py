"""The floor under a worker's drain: where its claims ahead start reading the due index.

A delivered event's pending version keeps its entry in the due index until vacuum removes it,
and while any transaction holds an older snapshot, neither vacuum nor an index scan may remove
it; every claim then reads all those entries from the index's start, a heap page each
(docs/performance.md). While a worker drains full batches, its claims ahead read only the
entries scheduled at or after the earliest ``scheduled_at`` of the batch in hand and the one
before it: below that are mostly rows already delivered, which the scan passes on the entry alone.

A pending row can be below the floor too: given back by a worker, left by a crashed one, held
back by an earlier event of another worker's batch, or committed long after it was scheduled.
No claim ahead sees it, but every other claim walks the whole index: the worker's claim after a
short or empty batch, and a claim ahead once ``walk_every`` has passed since the last walk. Such
a row waits at most that long, or until the drain ends; it is never passed over for good.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from .leases import Claim, claim

#: The longest a worker's claims ahead read from a floor rather than the whole due index: the
#: longest a row below the floor waits while full batches drain. Behind a held snapshot each walk
#: reads every row delivered since (docs/performance.md), so it is not made every second.
WALK_EVERY: Final = timedelta(seconds=5)
#: The claims the floor stays under: the batch in hand and the one before it, whose record may
#: still be on its way (so the next events of its rows' keys are above the floor, not below).
HELD_CLAIMS: Final = 2


class Floor:
    """One worker's claims ahead, each from a floor under the batches it holds.

    A worker's claims run one at a time (a claim ahead is waited for before the next claim), so
    an instance needs no lock. ``clock`` returns seconds (monotonic); tests pass their own.
    """

    def __init__(
        self, walk_every: timedelta = WALK_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._walk_every_s = walk_every.total_seconds()
        self._clock = clock
        self._walked_at = 0.0
        self._earliest: deque[datetime] = deque(maxlen=HELD_CLAIMS)
        self._last: Claim | None = None

    def claim_ahead(self, limit: int, lease: timedelta, in_hand: Claim) -> Claim:
        """Lease up to ``limit`` rows for ``lease`` while ``in_hand`` is delivered; return them.

        A batch in hand that this floor did not claim was claimed by a walk of the whole index
        just before (the drain started, or went on after a short batch): the floor starts again
        under it.
        """
        if in_hand is not self._last:
            self._started(in_hand)
        bound = self.bound()
        if bound is None:  # this claim walks the whole index; the floor stays under in_hand
            self._started(in_hand)
        batch = claim(limit, lease, floor=bound)
        self._last = batch
        if (earliest := batch.earliest_scheduled()) is not None:
            self._earliest.append(earliest)
        return batch

    def bound(self) -> datetime | None:
        """Return the earliest ``scheduled_at`` the next claim ahead reads, or ``None`` when it
        must walk the whole index (nothing held, or the last walk was ``walk_every`` ago)."""
        if not self._earliest or self._clock() - self._walked_at >= self._walk_every_s:
            return None
        return min(self._earliest)

    def _started(self, in_hand: Claim) -> None:
        """Start the floor again under ``in_hand``, as a walk of the whole index does."""
        self._walked_at = self._clock()
        self._earliest.clear()
        if (earliest := in_hand.earliest_scheduled()) is not None:
            self._earliest.append(earliest)
