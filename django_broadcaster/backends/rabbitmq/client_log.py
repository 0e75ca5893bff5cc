"""pika's own log lines, demoted to DEBUG while this package's code drives a connection.

pika logs five to seven ERROR lines for each connection attempt that fails, and more when an
open connection drops: a broker down for a minute would fill the worker's log. The backend and
the consumer report an outage themselves, once when it starts and once when it ends, so while
they connect, publish or fetch (:func:`quiet`), pika's records on that thread go out at DEBUG.
Records of other threads, and of pika used elsewhere in the process, pass untouched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final


class _Demoting(logging.Filter):
    """Demote the records of the threads inside :func:`quiet` to DEBUG."""

    def __init__(self) -> None:
        super().__init__()
        self.depth: dict[int, int] = {}  # thread id -> how many quiet() blocks it is in
        self._seen = 0  # how many loggers there were at the last install()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and self.depth.get(record.thread or 0):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True

    def install(self) -> None:
        """Put the filter on every ``pika`` logger, once there is a new logger (a logger's
        filters are its own: a parent's do not see its children's records)."""
        loggers = logging.Logger.manager.loggerDict
        if len(loggers) == self._seen:
            return
        with self._lock:
            self._seen = len(loggers)
            for name in list(loggers):
                if name.split(".")[0] == "pika":
                    logging.getLogger(name).addFilter(self)  # a no-op when already there


_DEMOTING: Final = _Demoting()


@contextmanager
def quiet() -> Iterator[None]:
    """Demote pika's records made on this thread to DEBUG within the block."""
    _DEMOTING.install()
    thread, depth = threading.get_ident(), _DEMOTING.depth
    depth[thread] = depth.get(thread, 0) + 1
    try:
        yield
    finally:
        depth[thread] -= 1
        if not depth[thread]:
            del depth[thread]  # thread ids are reused: keep none that is done
        _DEMOTING.install()  # pika imports some modules, so makes their loggers, on first use
