"""The worker: claim due events, deliver them, record the outcomes.

- :mod:`.loop`: the :class:`Worker` loop, claiming ahead, database reconnects;
- :mod:`.stats`: the running totals;
- :mod:`.delivery`: sending a batch to backends and handlers;
- :mod:`.recording`: writing outcomes back in bulk;
- :mod:`.backoff` and :mod:`.breaker`: retry delays and per-backend circuit breakers;
- :mod:`.collector`: the garbage collector's tuning for a process that only runs the worker.
"""

from .loop import Worker
from .stats import WorkerStats

__all__ = ["Worker", "WorkerStats"]
