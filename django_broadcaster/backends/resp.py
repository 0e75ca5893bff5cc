"""Redis commands packed in RESP by hand and sent on a connection of redis-py's pool.

redis-py's generic packing (an encoder call and several joins per argument) costs more than the
rest of a pipelined ``XADD``; :func:`xadd_command` builds the same bytes directly. Text arguments
are UTF-8 bulk strings, bytes go as they are: the request equals redis-py's
``Connection.pack_command`` with its default encoding (and UTF-8 is what the CloudEvents JSON
format requires anyway). A request is the same in RESP2 and RESP3; replies are read by redis-py's
parser. Needs the redis package: import this module only where redis is known to be installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis


def xadd_command(stream: str, fields: Mapping[str, str | bytes], max_len: int | None) -> bytes:
    """Return ``XADD stream [MAXLEN ~ max_len] * field value ...`` as one RESP request.

    ``max_len`` ``None`` leaves the stream untrimmed. Raises ``UnicodeEncodeError`` for text that
    UTF-8 cannot encode (a lone surrogate), as redis-py does.
    """
    args: list[str | bytes] = ["XADD", stream]
    if max_len is not None:
        args += ["MAXLEN", "~", str(max_len)]
    args.append("*")
    for name, value in fields.items():
        args += (name, value)
    return b"".join(_resp_array(args))


def _resp_array(args: Sequence[str | bytes]) -> Iterable[bytes]:
    yield b"*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        yield b"$%d\r\n%s\r\n" % (len(data), data)


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
