"""Wait for a condition that offers nothing to block on, by checking it a little apart."""

from __future__ import annotations

import time
from collections.abc import Callable

#: The default pause between two checks: quick enough for a test, light on a shared machine.
EVERY_S = 0.05


def poll(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    *,
    every: float = EVERY_S,
    detail: Callable[[], str] | None = None,
) -> float:
    """Wait until ``condition()`` is true; return the seconds that took.

    Checks it every ``every`` seconds. After ``timeout`` seconds raises ``TimeoutError`` saying it
    gave up waiting for ``what`` (a phrase: "every event published"), followed by what
    ``detail()`` returns then, if given (the state that the condition was waiting on).
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            message = f"gave up after {timeout:g} s waiting for {what}"
            raise TimeoutError(f"{message}; {detail()}" if detail else message)
        time.sleep(every)
    return time.monotonic() - started
