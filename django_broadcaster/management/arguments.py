"""Argument types the commands share, so that a value that makes no sense is refused with a
message (by argparse) instead of a traceback, or a health check silently turned off."""

from __future__ import annotations

import math
from argparse import ArgumentTypeError


def seconds(text: str) -> float:
    """Return ``text`` as a number of seconds, 0 or more.

    Raises ``ArgumentTypeError`` for anything else, NaN and infinity included (``--max-lag nan``
    would pass every check, and ``inf`` overflows a ``timedelta``).
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ArgumentTypeError(f"must be a number of seconds, 0 or more, got {text!r}")
    return value
