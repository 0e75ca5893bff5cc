"""Publish with publisher confirms over pika's ``SelectConnection``, on the caller's thread.

A batch is packed into frames by :mod:`.frames` and written in one go, past pika's own
``basic_publish`` (see there why).
pika's ``BlockingConnection`` waits for each confirm before the next publish: about 1,600
messages a second here. With the asynchronous ``SelectConnection`` a whole batch is written at
once and the broker's confirms, often one ``multiple`` ack for many messages, are read as they
come, about nine times as fast (docs/performance.md). Its I/O loop runs only inside
:meth:`ConfirmingChannel.publish`, on the calling thread, until every confirm is in or the
deadline has passed. Between calls nothing reads the socket, so heartbeats are off unless the
URL asks for them, and a connection the broker has closed meanwhile is noticed, and replaced,
at the start of the next call instead of failing it. Imported only when pika is installed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import pika
from pika.adapters.select_connection import SelectConnection
from pika.exceptions import AMQPError
from pika.spec import Basic

from .frames import Packer
from .messages import AmqpMessage

#: A message to publish: routing key, message and message id.
Outgoing = tuple[str, AmqpMessage, str]
#: AMQP's delivery mode of a message the broker writes to disk.
PERSISTENT = 2
#: How long a graceful close may take before the connection is dropped.
CLOSE_TIMEOUT_S = 1.0


class ChannelFailed(Exception):
    """The connection or the channel failed, or the broker did not answer in time."""


class ConfirmingChannel:
    """One connection and one channel in confirm mode, publishing to ``exchange``.

    Not thread-safe: one call at a time. :meth:`close` is safe to call twice.
    """

    def __init__(self, parameters: pika.ConnectionParameters, exchange: str, mandatory: bool):
        self.parameters, self.exchange, self.mandatory = parameters, exchange, mandatory
        self._connection: SelectConnection | None = None
        self._channel: Any = None
        self._error: ChannelFailed | None = None
        self._until: Callable[[], bool] | None = None
        self._pending: dict[int, int] = {}  # delivery tag -> index of the message in the batch
        self._lowest = self._last_tag = 0  # the lowest unconfirmed delivery tag; the last one
        self._by_id: dict[str, int] = {}  # message id -> index, to match returned messages
        self._refused: dict[int, str] = {}
        self._packer: Packer | None = None  # made for each channel

    def publish(self, messages: Sequence[Outgoing], timeout: float) -> dict[int, str]:
        """Publish ``messages`` and wait for their confirms; return each refusal by index.

        A message the broker nacked, or returned as unroutable (with ``mandatory``), is refused;
        the others were confirmed. Connects first if needed. Raises :class:`ChannelFailed` when
        the connection or channel fails or ``timeout`` (seconds) passes before every confirm:
        some messages may have reached the broker all the same.
        """
        deadline = time.monotonic() + timeout
        self._ensure_open(deadline)
        self._refused = {}
        packed = self._packed(messages)
        self._start_batch(messages, list(packed))
        if packed:
            # One write for the batch: pika's own publish writes each frame with a send().
            self._connection._output_marshaled_frames([b"".join(packed.values())])  # type: ignore[union-attr]
        self._run_until(lambda: not self._pending, deadline)
        if self._error is not None:
            self._fail(str(self._error))
        if self._pending:
            self._fail(
                f"{len(self._pending)} of {len(messages)} confirms missing after {timeout:g} s"
            )
        return self._refused

    def close(self) -> None:
        """Close the connection gracefully, dropping it after a second. Safe to call twice."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is None:
            return
        if not (connection.is_closing or connection.is_closed):
            connection.close()
        self._connection = connection  # the loop runs on it until it has closed
        # pika 1.3-1.4 assert when a connection still in its handshake (a frozen broker) is
        # closed: they pass the "aborted" class, not an instance. It is closed by then.
        with contextlib.suppress(AssertionError):
            self._run_until(lambda: connection.is_closed, time.monotonic() + CLOSE_TIMEOUT_S)
        self._connection = None
        connection.ioloop.close()

    # --- the connection ----------------------------------------------------------------------

    def _ensure_open(self, deadline: float) -> None:
        if self._connection is not None:
            self._run_until(lambda: False, time.monotonic())  # read what came: a close, maybe
        if self._error is not None or self._connection is None or self._channel is None:
            self.close()
            self._connect(deadline)

    def _connect(self, deadline: float) -> None:
        self._error, self._pending = None, {}
        self._connection = SelectConnection(
            self.parameters,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_connection_closed,
        )
        self._run_until(lambda: self._channel is not None or self._error is not None, deadline)
        if self._channel is None:
            self._fail("no answer" if self._error is None else str(self._error))

    def _on_open(self, connection: SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=lambda _: self._ready(channel))

    def _ready(self, channel: Any) -> None:
        self._channel, self._lowest, self._last_tag = channel, 1, 0
        frame_max = channel.connection.params.frame_max  # as agreed with the broker
        self._packer = Packer(channel.channel_number, self.exchange, self.mandatory, frame_max)
        self._poke()

    def _on_open_error(self, connection: SelectConnection, error: BaseException | str) -> None:
        self._broken(f"cannot connect: {_text(error)}")

    def _on_connection_closed(self, connection: SelectConnection, error: BaseException) -> None:
        self._broken(f"connection closed: {_text(error)}")

    def _on_channel_closed(self, channel: Any, error: BaseException) -> None:
        self._broken(f"channel closed: {_text(error)}")

    def _broken(self, reason: str) -> None:
        if self._error is None:
            self._error = ChannelFailed(reason)
        self._channel = None
        self._poke()

    def _fail(self, reason: str) -> None:
        """Drop the connection (it is not trusted any more) and raise ``ChannelFailed``."""
        error, self._error = self._error, None
        self.close()
        if error is not None and str(error) != reason:
            reason = f"{reason}; {error}"
        raise ChannelFailed(reason)

    # --- a batch -----------------------------------------------------------------------------

    def _packed(self, messages: Sequence[Outgoing]) -> dict[int, bytes]:
        """Return the frames of each message by index; one that cannot be packed is refused."""
        assert self._packer is not None
        pack, packed = self._packer.pack, {}
        for index, (routing_key, message, message_id) in enumerate(messages):
            try:
                packed[index] = pack(routing_key, message, message_id, PERSISTENT)
            except ValueError as exc:
                self._refused[index] = str(exc)
        return packed

    def _start_batch(self, messages: Sequence[Outgoing], sent: list[int]) -> None:
        """Expect a confirm for each message of ``sent`` (indexes), in order."""
        first = self._last_tag + 1
        self._last_tag += len(sent)
        self._pending = dict(zip(range(first, self._last_tag + 1), sent, strict=True))
        self._by_id = {messages[index][2]: index for index in sent}

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag, nacked = method.delivery_tag, isinstance(method, Basic.Nack)
        tags = range(self._lowest, tag + 1) if method.multiple else (tag,)
        for confirmed in tags:
            index = self._pending.pop(confirmed, None)
            if index is not None and nacked:
                self._refused.setdefault(index, "the broker nacked it")
        while self._lowest <= self._last_tag and self._lowest not in self._pending:
            self._lowest += 1
        self._poke()

    def _on_return(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        index = self._by_id.get(properties.message_id)
        if index is not None:  # returned before its ack, which the broker sends after
            self._refused[index] = (
                f"returned by the broker: {method.reply_code} {method.reply_text} (exchange "
                f"{method.exchange!r}, routing key {method.routing_key!r})"
            )

    # --- the loop ----------------------------------------------------------------------------

    def _run_until(self, done: Callable[[], bool], deadline: float) -> None:
        """Run the I/O loop until ``done()`` or ``deadline`` (if past: read what is ready)."""
        connection = self._connection
        if connection is None or done():
            return
        ioloop = connection.ioloop
        timer = ioloop.call_later(max(deadline - time.monotonic(), 0.0), ioloop.stop)
        self._until = done
        try:
            ioloop.start()
        except AMQPError as exc:
            self._broken(_text(exc))
        finally:
            self._until = None
            ioloop.remove_timeout(timer)

    def _poke(self) -> None:
        """Stop the loop once what the caller waits for has happened, or a failure."""
        if self._until is None or self._connection is None:
            return
        if self._error is not None or self._until():
            self._connection.ioloop.stop()


def _text(error: BaseException | str) -> str:
    """Return what ``error`` says, its type first; pika's connection errors wrap the cause."""
    while isinstance(error, BaseException) and not str(error):
        # AMQPConnectionError(cause) and the workflow's error (its .exceptions) print as ""
        causes = getattr(error, "exceptions", None) or error.args
        if not causes:
            break
        error = causes[-1]
    text = str(error) or repr(error)
    name = type(error).__name__
    return text if isinstance(error, str) or name in text else f"{name}: {text}"
