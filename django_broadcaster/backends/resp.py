"""Redis commands packed in RESP by hand and sent on a connection of redis-py's pool.

redis-py's generic packing (an encoder call and several joins per argument) outweighs the rest of a
pipelined ``XADD`` (docs/performance.md); :func:`xadd_command` builds the same bytes directly. Text
arguments are UTF-8 bulk strings, bytes go as they are: the request equals redis-py's
``Connection.pack_command`` with its default encoding (and UTF-8 is what the CloudEvents JSON format
requires anyway). A request is the same in RESP2 and RESP3; replies are read by redis-py's parser.
Needs the redis package: import this module only where redis is known to be installed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import redis


def xadd_command(stream: str, fields: Mapping[str, str | bytes], max_len: int | None) -> bytes:
    """Return ``XADD stream [MAXLEN ~ max_len] * field value ...`` as one RESP request.

    ``max_len`` ``None`` leaves the stream untrimmed. Raises ``UnicodeEncodeError`` for text that
    UTF-8 cannot encode (a lone surrogate), as redis-py does.
    """
    parts = [_xadd_head(stream, max_len, len(fields))]
    for name, value in fields.items():
        parts.append(_name(name))
        parts.append(_bulk(value.encode() if isinstance(value, str) else value))
    return b"".join(parts)


@functools.lru_cache(maxsize=64)
def _xadd_head(stream: str, max_len: int | None, field_count: int) -> bytes:
    """Return the part of an XADD request before its fields: the same for a whole batch."""
    args = ["XADD", stream, *(() if max_len is None else ("MAXLEN", "~", str(max_len))), "*"]
    array = b"*%d\r\n" % (len(args) + 2 * field_count)
    return array + b"".join(_bulk(arg.encode()) for arg in args)


@functools.lru_cache(maxsize=256)
def _name(name: str) -> bytes:
    """Return a field name as a bulk string (a few names recur in every entry)."""
    return _bulk(name.encode())


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def round_trip(pool: redis.ConnectionPool, request: bytes, count: int) -> list[Any]:
    """Send ``request`` (``count`` packed commands) on one pooled connection; return the replies.

    An error reply comes back as its ``redis.ResponseError``; any other failure is raised. The
    connection's ``retry`` repeats the whole request as redis-py's pipeline does (by default
    ``Retry`` retries after a ``ConnectionError`` only). A connection that failed is disconnected
    before it goes back to the pool, so that it holds no unread replies.
    """
    # redis-py before 5.3 requires a command name here; later versions deprecate it. The
    # connection is typed Any because redis-py's connection methods carry no type hints.
    connection: Any = (
        pool.get_connection("XADD") if redis.VERSION < (5, 3) else pool.get_connection()
    )
    try:
        replies: list[Any] = connection.retry.call_with_retry(
            lambda: _send_and_read(connection, request, count), lambda _: connection.disconnect()
        )
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
    return replies


def _send_and_read(connection: Any, request: bytes, count: int) -> list[Any]:
    connection.send_packed_command([request])  # a list: one sendall() of the whole request
    return [_reply(connection) for _ in range(count)]


def _reply(connection: Any) -> Any:
    try:
        return connection.read_response()
    except redis.ResponseError as exc:  # this command's error, not the connection's
        return exc
