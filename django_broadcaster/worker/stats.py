"""The worker's running totals."""

from __future__ import annotations

from dataclasses import dataclass

from .recording import BatchSummary


@dataclass
class WorkerStats:
    """Running totals since the worker started."""

    batches: int = 0
    published: int = 0
    retried: int = 0
    deferred: int = 0
    failed: int = 0
    expired: int = 0

    def add(self, summary: BatchSummary) -> None:
        """Add one batch's counts."""
        self.batches += 1
        self.published += summary.published
        self.retried += summary.retried
        self.deferred += summary.deferred
        self.failed += summary.failed
        self.expired += summary.expired
