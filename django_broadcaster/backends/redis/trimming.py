"""Trim a Redis stream below what its consumer groups still need, or below an age.

``XTRIM MINID`` removes the entries whose id is below a bound. :func:`consumed_bound` finds the
oldest entry some consumer group still needs: the oldest one delivered to it and not yet
acknowledged (``XPENDING``), or else the last one delivered to it (``XINFO GROUPS``'
``last-delivered-id``, which is kept too); a stream without consumer groups has no such bound,
and keeps every entry. :func:`age_bound` computes the bound of an age from the server's clock,
which also stamped the entry ids. Redis 8.2's ``XADD ... ACKED`` is not used: where a stream has
no consumer group, it trims all the same.

The trim is approximate (``~``): Redis frees whole nodes of entries only, and at most its
``LIMIT`` of entries per call, so entries below the bound may stay until a later call.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

#: An entry id, ``<milliseconds>-<sequence>``, as numbers that compare in stream order.
EntryId = tuple[int, int]


def consumed_bound(client: Any, stream: str) -> EntryId | None:
    """Return the oldest entry id a consumer group of ``stream`` still needs; ``None`` if none.

    ``client`` is a ``redis.Redis``; the stream must exist. Consumers that move on while this
    runs only make the bound older than it could be, never newer.
    """
    groups = [
        {_text(key): value for key, value in group.items()} for group in client.xinfo_groups(stream)
    ]
    bounds = [entry_id(group["last-delivered-id"]) for group in groups]
    waiting = [group["name"] for group in groups if group["pending"]]
    if waiting:
        with client.pipeline(transaction=False) as pipe:
            for name in waiting:
                pipe.xpending(stream, name)
            summaries = pipe.execute()
        bounds += [entry_id(summary["min"]) for summary in summaries if summary["min"]]
    return min(bounds, default=None)


def age_bound(client: Any, max_age: timedelta) -> EntryId:
    """Return the id of the entries added ``max_age`` ago, by the server's clock."""
    seconds, microseconds = client.time()
    return (seconds * 1000 + microseconds // 1000 - max_age // timedelta(milliseconds=1), 0)


def trim_below(client: Any, stream: str, bound: EntryId | None) -> int:
    """Remove the entries of ``stream`` below ``bound``, approximately; return how many went.

    ``None``, or a bound at or before the first possible id, removes nothing.
    """
    if bound is None or bound <= (0, 0):
        return 0
    return int(client.xtrim(stream, minid=f"{bound[0]}-{bound[1]}", approximate=True))


def entry_id(raw: bytes | str) -> EntryId:
    """Return a stream entry id (``b"1700000000000-3"``) as numbers."""
    milliseconds, _, sequence = _text(raw).partition("-")
    return int(milliseconds), int(sequence or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
