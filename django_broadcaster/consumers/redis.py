"""Consume a Redis stream written by :class:`~django_broadcaster.backends.RedisStreamBackend`.

The consumer is a member of a consumer group (created with ``XGROUP CREATE ... MKSTREAM`` from
the start of the stream if it does not exist). Each fetch takes, in this order:

1. its own pending entries, left unacknowledged by an earlier run under the same consumer name
   (``XREADGROUP`` from ``0``), until there are none;
2. entries other consumers left pending for longer than ``claim_idle`` (``XAUTOCLAIM``): a
   consumer that died keeps its entries until someone claims them;
3. new entries (``XREADGROUP >``), waiting up to ``block`` for them.

Entries are acknowledged with ``XACK`` after their transactions commit (see :mod:`.base`).
An entry trimmed from the stream (the backend's ``max_len`` or ``max_age``) before it was
processed is lost: it is logged, and recorded as a dead letter when the consumer still holds
its id.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..exceptions import missing_library
from .base import BaseConsumer
from .decoding import UndecodableMessage, decode_stream_entry
from .processing import Message

try:
    import redis
except ImportError as exc:  # the extra is not installed: building the consumer says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

if TYPE_CHECKING:
    Entry = tuple[bytes, dict[bytes, bytes]]

logger = logging.getLogger(__name__)

GONE = "the entry was trimmed from the stream before it was processed"


def default_consumer_name() -> str:
    """Return ``<host>-<pid>``: unique per process, so crashed consumers' entries get claimed."""
    return f"{socket.gethostname()}-{os.getpid()}"


class RedisStreamConsumer(BaseConsumer):
    """Consume ``stream`` as ``consumer`` in group ``group``; see the module docstring.

    ``client`` is a ``redis.Redis`` whose socket timeout exceeds ``block``; the caller closes
    it. Reuse a ``consumer`` name across restarts to resume its pending entries at once; a new
    name leaves them to be claimed after ``claim_idle``. Other keyword arguments go to
    :class:`~.base.BaseConsumer`.
    """

    broker_errors = (redis.ConnectionError, redis.TimeoutError) if _MISSING is None else ()

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        consumer: str | None = None,
        *,
        batch_size: int = 100,
        block: timedelta = timedelta(seconds=1),
        claim_idle: timedelta = timedelta(seconds=60),
        **options: Any,
    ) -> None:
        if _MISSING is not None:
            raise missing_library(type(self).__name__, "redis", "redis") from _MISSING
        super().__init__(**options)
        self.client, self.stream, self.group = client, stream, group
        self.consumer = consumer or default_consumer_name()
        self.batch_size, self.block, self.claim_idle = batch_size, block, claim_idle
        self._backlog = True
        self._claim_cursor = "0-0"
        self._next_claim = 0.0  # time.monotonic() of the next XAUTOCLAIM round

    def open(self) -> None:
        """Create the consumer group (and the stream) unless it exists."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):  # Redis's error code: group exists
                raise

    def fetch(self) -> list[Message]:
        """Return own pending entries, else claimable ones, else new ones (see the module)."""
        if self._backlog:
            entries = self._read("0", block=None)
            if entries:
                return self._messages(entries)
            self._backlog = False
        if time.monotonic() >= self._next_claim and (entries := self._claim()):
            return self._messages(entries)
        return self._messages(self._read(">", block=self.block))

    def acknowledge(self, messages: list[Message]) -> None:
        """``XACK`` the entries of ``messages``."""
        self.client.xack(self.stream, self.group, *(message.handle for message in messages))

    def is_idle(self) -> bool:
        """Return ``True``: an empty read came after the backlog and the claimable entries."""
        return not self._backlog

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} stream={self.stream!r} group={self.group!r} "
            f"consumer={self.consumer!r}>"
        )

    def _read(self, start: str, block: timedelta | None) -> list[Entry]:
        milliseconds = None if block is None else int(block.total_seconds() * 1000)
        response = self.client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: start},
            count=self.batch_size,
            block=milliseconds,
        )
        return _entries(response)

    def _claim(self) -> list[Entry]:
        """Claim one page of entries idle for ``claim_idle``; a full round ends at ``0-0``."""
        milliseconds = int(self.claim_idle.total_seconds() * 1000)
        answer = self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            milliseconds,
            self._claim_cursor,
            count=self.batch_size,
        )
        cursor, entries, deleted = answer[0], answer[1], answer[2] if len(answer) > 2 else []
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if deleted:
            logger.warning(
                "Stream %r: %d pending entries lost: %s.", self.stream, len(deleted), GONE
            )
        if self._claim_cursor == "0-0":
            self._next_claim = time.monotonic() + self.claim_idle.total_seconds()
        if entries:
            logger.info("Claimed %d entries left by other consumers.", len(entries))
        return list(entries)

    def _messages(self, entries: list[Entry]) -> list[Message]:
        return [self._message(entry_id, fields) for entry_id, fields in entries]

    def _message(self, entry_id: bytes, fields: dict[bytes, bytes] | None) -> Message:
        origin, position = f"redis:{self.stream}", entry_id.decode()
        if not fields:
            return Message(origin, position, entry_id, None, problem=GONE)
        try:
            event = decode_stream_entry(fields)
        except UndecodableMessage as exc:
            return Message(origin, position, entry_id, None, problem=str(exc), raw=_text(fields))
        return Message(origin, position, entry_id, event)


def _entries(response: Any) -> list[Entry]:
    """Return the entries of an ``XREADGROUP`` answer on one stream (RESP2 or RESP3)."""
    if not response:
        return []
    if isinstance(response, dict):  # RESP3: {stream: [entries]}
        (entries,) = response.values()
        return list(entries[0])
    return list(response[0][1])  # RESP2: [[stream, entries]]


def _text(fields: dict[bytes, bytes]) -> str:
    decoded = {
        key.decode(errors="replace"): value.decode(errors="replace")
        for key, value in fields.items()
    }
    return json.dumps(decoded)
