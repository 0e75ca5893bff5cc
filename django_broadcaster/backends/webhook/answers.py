"""What a receiver's HTTP answer means for the events of the request: the one place it is decided.

* 2xx: delivered. 409 Conflict too: the receiving view answers it when it has every event of the
  request already (a retry whose first answer was lost), so the events are there.
* 408, 429 and 5xx: the receiver cannot take requests now, an outage: the events wait, no retry
  spent, and the backend pauses at least as long as ``Retry-After`` asks (capped).
* 3xx: refused, as redirects are not followed (a signed request must reach the URL configured).
* any other 4xx (and 1xx): the receiver refused these events: each spends a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Final

#: Statuses meaning the receiver is busy or down rather than refusing these events.
UNAVAILABLE_STATUSES: Final = frozenset({408, 429})
#: How much of a refusing answer's body the error keeps, to say why.
EXCERPT_CHARS: Final = 200


@dataclass(frozen=True)
class Answer:
    """What one request's answer means: ``delivered``, ``unavailable`` or refused.

    ``problem`` says what the receiver answered, for the error; ``retry_after`` is how long an
    unavailable receiver asked to be left alone, if it said.
    """

    delivered: bool = False
    unavailable: bool = False
    problem: str = ""
    retry_after: timedelta | None = None


DELIVERED: Final = Answer(delivered=True)


def classify(
    status: int, reason: str, headers: dict[str, str], body: bytes, *, cap: timedelta
) -> Answer:
    """Return what the answer ``status`` (with ``reason``, ``headers``, ``body``) means.

    ``headers`` are lower-cased names; a ``Retry-After`` over ``cap`` counts as ``cap``.
    """
    if 200 <= status < 300 or status == 409:
        return DELIVERED
    problem = f"HTTP {status} {reason}".rstrip()
    if status in UNAVAILABLE_STATUSES or status >= 500:
        wait = retry_after(headers.get("retry-after", ""), datetime.now(timezone.utc))
        capped = None if wait is None else min(wait, cap)
        return Answer(unavailable=True, problem=problem, retry_after=capped)
    if 300 <= status < 400:
        where = headers.get("location", "")
        return Answer(problem=f"{problem}: redirects are not followed (to {where or '?'})")
    excerpt = body[:EXCERPT_CHARS].decode("utf-8", "replace").strip()
    return Answer(problem=f"{problem}: {excerpt}" if excerpt else problem)


def retry_after(value: str, now: datetime) -> timedelta | None:
    """Return the wait a ``Retry-After`` value asks from ``now``: seconds or an HTTP date.

    Returns ``None`` for an empty or unreadable value, and no less than zero.
    """
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(moment - now, timedelta(0))
