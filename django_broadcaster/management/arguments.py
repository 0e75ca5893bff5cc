"""Argument types the commands share, so that a value that makes no sense is refused with a
message (by argparse) instead of a traceback, or a health check silently turned off."""

from __future__ import annotations

import math
from argparse import ArgumentTypeError
from collections.abc import Callable

from ..backends.urls import password_cut_problem


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


def broker_url(client: str) -> Callable[[str], str]:
    """Return an argument type that takes a broker URL whose password ``client`` reads whole.

    The type raises ``ArgumentTypeError`` for a URL the client would cut short, without echoing
    it: the client would send a part of the password, maybe to another host.
    """

    def checked(url: str) -> str:
        if problem := password_cut_problem(url, client):
            raise ArgumentTypeError(problem)
        return url

    checked.__name__ = "url"  # argparse names the type in its own messages
    return checked
