"""Argument types the commands share, so that a value that makes no sense is refused with a
message (by argparse) instead of a traceback, or a health check silently turned off."""

from __future__ import annotations

import math
from argparse import ArgumentTypeError
from collections.abc import Callable
from datetime import date, datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

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


def moment(text: str) -> datetime:
    """Return ``text``, an ISO 8601 date or date and time, as an aware datetime.

    A date means its midnight; a time without an offset is in the current time zone. Raises
    ``ArgumentTypeError`` for anything else.
    """
    try:
        value = parse_datetime(text) or _midnight(parse_date(text))
    except ValueError:  # well formed but impossible: 2026-02-30
        value = None
    if value is None:
        raise ArgumentTypeError(
            "must be an ISO 8601 date or date and time (2026-12-07, 2026-12-07T14:00), "
            f"got {text!r}"
        )
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time())


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
