"""Pack messages as AMQP 0-9-1 ``basic.publish`` frames, a whole batch into one buffer.

pika builds each message from a dozen objects (the method, a ``BasicProperties``, the frames)
and writes each of its three frames with a ``send()`` of its own: three system calls a message,
and three small TCP segments for the broker to read. :class:`Packer` writes the same bytes with
``struct``, the method frame of each routing key and each header's name packed once, so the
backend hands a whole batch to the connection in one write (docs/performance.md). The bytes are
those pika writes: ``tests/unit/test_rabbitmq_frames.py`` compares them.
"""

from __future__ import annotations

import struct
from typing import Final

from .messages import AmqpMessage

_FRAME: Final = struct.Struct(">BHI")  # type, channel, payload size
_FRAME_END: Final = b"\xce"
_METHOD, _HEADER, _BODY = 1, 2, 3
_PUBLISH: Final = struct.pack(">HHH", 60, 40, 0)  # class basic, method publish, ticket
_HEADER_HEAD: Final = struct.Struct(">HHQH")  # class basic, weight, body size, property flags
#: The flags of the properties written, in the order AMQP lays them out.
_CONTENT_TYPE, _HEADERS, _DELIVERY_MODE, _MESSAGE_ID = 1 << 15, 1 << 13, 1 << 12, 1 << 7
_LONG: Final = struct.Struct(">I")
#: The bytes around each frame that a frame's size leaves out: its head and its end octet.
FRAME_OVERHEAD: Final = _FRAME.size + len(_FRAME_END)


class Packer:
    """Pack messages for one channel, exchange and ``mandatory`` flag.

    ``frame_max`` is the largest frame the connection agreed on; a longer body is split across
    body frames. Raises ``ValueError`` for a routing key, content type, header name or message
    id over AMQP's 255 bytes.
    """

    def __init__(self, channel: int, exchange: str, mandatory: bool, frame_max: int) -> None:
        self._channel, self._body_max = channel, frame_max - FRAME_OVERHEAD
        self._tail = _short(exchange)
        self._bits = b"\x01" if mandatory else b"\x00"
        self._methods: dict[str, bytes] = {}  # routing key -> its whole method frame
        self._names: dict[str, bytes] = {}  # header name -> its short string and type ("S")

    def pack(self, routing_key: str, message: AmqpMessage, message_id: str, mode: int) -> bytes:
        """Return the frames of one persistent (``mode`` 2) or transient (1) message."""
        method = self._methods.get(routing_key)
        if method is None:
            payload = _PUBLISH + self._tail + _short(routing_key) + self._bits
            method = self._methods[routing_key] = self._frame(_METHOD, payload)
        body = message.body
        parts = [method, self._frame(_HEADER, self._properties(message, message_id, mode, body))]
        step = self._body_max
        parts += [self._frame(_BODY, body[i : i + step]) for i in range(0, len(body), step)]
        return b"".join(parts)

    def _properties(self, message: AmqpMessage, message_id: str, mode: int, body: bytes) -> bytes:
        flags, fields = _DELIVERY_MODE | _MESSAGE_ID, []
        if message.content_type is not None:
            flags |= _CONTENT_TYPE
            fields.append(_short(message.content_type))
        if message.headers:
            flags |= _HEADERS
            fields.append(self._table(message.headers))
        fields += [bytes((mode,)), _short(message_id)]
        return _HEADER_HEAD.pack(60, 0, len(body), flags) + b"".join(fields)

    def _table(self, headers: dict[str, str]) -> bytes:
        names, entries = self._names, list[bytes]()
        for name, value in headers.items():
            packed = names.get(name)
            if packed is None:
                packed = names[name] = _short(name) + b"S"
            data = value.encode()
            entries += (packed, _LONG.pack(len(data)), data)
        table = b"".join(entries)
        return _LONG.pack(len(table)) + table

    def _frame(self, kind: int, payload: bytes) -> bytes:
        return _FRAME.pack(kind, self._channel, len(payload)) + payload + _FRAME_END


def _short(text: str) -> bytes:
    data = text.encode()
    if len(data) > 255:
        raise ValueError(f"{text[:40]!r}... is over AMQP's 255 bytes for a short string")
    return bytes((len(data),)) + data
