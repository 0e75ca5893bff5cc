"""The worker: claim due events, deliver them, record the outcomes.

- :mod:`.loop`: the :class:`Worker`, its pipeline of stages (claim ahead, deliver, record) and its
  loop (idle waits, database restarts, graceful stops);
- :mod:`.delivery`: a batch sent to each backend through its courier, and to each handler;
- :mod:`.eager`: eager mode, where the publishing process delivers its events on commit;
- :mod:`.wakeup`: waking an idle worker when new events commit (LISTEN/NOTIFY);
- :mod:`.progress`: the progress line, the lag gauge and the running totals;
- :mod:`.gc_tuning`: the garbage collector's tuning for a process that only runs the worker.

Retries, breakers and deadlines are decided in :mod:`django_broadcaster.retry`; every write to
the outbox is made by :mod:`django_broadcaster.outbox`.
"""

from .loop import Worker
from .progress import WorkerStats

__all__ = ["Worker", "WorkerStats"]
