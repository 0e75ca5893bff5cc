"""Graceful stops for the long-running loops: the outbox worker and the inbox consumers.

The first SIGTERM or SIGINT asks the loop to stop once the work in hand is done; a second one, or
the grace period running out, raises :class:`StopNow` in the main thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Final

logger = logging.getLogger(__name__)

STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)
#: What the main thread handles: the stop signals and the grace period's alarm. Other threads
#: block these, since the kernel may hand a process's signal to any thread that does not.
MAIN_THREAD_SIGNALS: Final = frozenset({*STOP_SIGNALS, signal.SIGALRM})


class StopNow(BaseException):
    """A second stop signal, or the grace period is over: stop without finishing the work in hand.

    A ``BaseException``, so that no ``except Exception`` in a handler or backend swallows it.
    """


class GracefulStop:
    """The stop signals of one loop, once :meth:`install` is called from the main thread.

    The first signal calls ``request_stop`` (which must set ``requested``) and starts the grace
    period; a signal after ``requested`` is set, or the end of the grace period, raises
    :class:`StopNow`.
    """

    def __init__(self, requested: threading.Event, request_stop: Callable[[], None]) -> None:
        self.requested = requested
        self._request_stop = request_stop
        self._grace: timedelta | None = None  # set by install()
        self._in_hand = ""

    @property
    def installed(self) -> bool:
        """Return whether this loop handles the process's stop signals."""
        return self._grace is not None

    def install(self, grace: timedelta, in_hand: str) -> None:
        """Handle SIGTERM and SIGINT; ``in_hand`` names what a stop finishes, for the log."""
        self._grace, self._in_hand = grace, in_hand
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_grace_period_over)

    def cancel_timer(self) -> None:
        """End the grace period's timer, if one runs (safe to call at any time)."""
        if self.installed:
            signal.setitimer(signal.ITIMER_REAL, 0)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold stop signals inside the block, so that what it writes is never cut in two."""
        if not self.installed:
            yield
            return
        signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MAIN_THREAD_SIGNALS)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            raise StopNow
        grace = (self._grace or timedelta(0)).total_seconds()
        logger.info(
            "Received %s: finishing the %s in hand (at most %.0f s).",
            signal.Signals(signum).name,
            self._in_hand,
            grace,
        )
        self._request_stop()
        signal.setitimer(signal.ITIMER_REAL, max(grace, 0.001))

    def _on_grace_period_over(self, signum: int, frame: FrameType | None) -> None:
        raise StopNow
