"""Wake an idle worker as soon as new events commit: LISTEN/NOTIFY on PostgreSQL.

Migration ``0006_notify_trigger`` makes every insert into the outbox send ``NOTIFY`` on a channel
named after the table, in the inserting transaction, so it reaches listeners only on commit (one
per transaction, however many rows). :class:`Wakeup` listens on a connection of its own and ends
the worker's idle wait when a notification comes. On other databases, with ``LISTEN`` off, or while
the listening connection is down, the wait simply lasts the poll interval: polling is the fallback.
"""

from __future__ import annotations

import logging
import os
import select
import time
from contextlib import suppress
from datetime import timedelta
from typing import Any

from django.db import connections, router

from ..conf import BroadcasterSettings
from ..outbox.models import OutboxEvent
from ..retry import backoff_delay

logger = logging.getLogger(__name__)

#: Seconds to wait for the listening connection to open, unless the database OPTIONS say.
CONNECT_TIMEOUT_S = 5


class Listener:
    """A dedicated autocommit psycopg connection that runs ``LISTEN channel``.

    Build it with :meth:`open`; the caller must :meth:`close` it. psycopg errors
    (``psycopg.Error``) are raised as they are.
    """

    def __init__(self, connection: Any, channel: str) -> None:
        self.connection, self.channel = connection, channel

    @classmethod
    def open(cls, alias: str, channel: str) -> Listener:
        """Connect to database ``alias`` with Django's parameters and start listening."""
        import psycopg
        from psycopg import sql

        params = connections[alias].get_connection_params()
        params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        connection = psycopg.connect(**params, autocommit=True)
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except BaseException:
            connection.close()
            raise
        return cls(connection, channel)

    def fileno(self) -> int:
        """Return the socket to wait on: it turns readable when a notification arrives."""
        return int(self.connection.fileno())

    def drain(self) -> int:
        """Read every notification that has arrived, without blocking; return how many.

        Raises ``psycopg.OperationalError`` when the connection is broken.
        """
        pgconn = self.connection.pgconn
        pgconn.consume_input()
        count = 0
        while pgconn.notifies() is not None:
            count += 1
        return count

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        self.connection.close()


class Wakeup:
    """Wait until new events may be due, the timeout passes, or :meth:`interrupt` is called.

    ``listen`` turns LISTEN/NOTIFY on; it is used only when the outbox's database is PostgreSQL
    and psycopg 3 is installed. A broken listening connection is reopened after a backoff from
    ``retry_base`` to ``retry_max``. The caller must :meth:`close` it.
    """

    def __init__(self, listen: bool, retry_base: timedelta, retry_max: timedelta) -> None:
        self.retry_base, self.retry_max = retry_base, retry_max
        self.listener: Listener | None = None
        self._enabled = listen
        self._failures = 0
        self._retry_at = 0.0
        self._interrupted = False
        self._pipe: tuple[int, int] | None = None

    @classmethod
    def from_settings(cls, config: BroadcasterSettings) -> Wakeup:
        """Return a wakeup for ``LISTEN``, reconnecting with the breaker's delays."""
        return cls(config.listen, config.breaker_base_delay, config.breaker_max_delay)

    def wait(self, timeout_s: float) -> bool:
        """Block for at most ``timeout_s`` seconds; return whether new events may be due.

        True when a notification came, or when listening has just (re)started or stopped, since
        notifications may have been missed meanwhile. False on timeout, and at once (without
        waiting) once :meth:`interrupt` was called.
        """
        pipe = self._open_pipe()
        if self._interrupted:
            return False
        if self.listener is None and self._should_connect():
            return self._connect()
        readers = [pipe] if self.listener is None else [pipe, self.listener.fileno()]
        ready, _, _ = select.select(readers, [], [], max(timeout_s, 0.0))
        if self.listener is None or self.listener.fileno() not in ready:
            return False
        return self._drain()

    def interrupt(self) -> None:
        """End the current wait, and make every later one return at once.

        Safe to call from a signal handler or another thread.
        """
        self._interrupted = True
        if self._pipe is not None:
            with suppress(OSError):  # the pipe is full: the wait is woken already
                os.write(self._pipe[1], b"\0")

    def close(self) -> None:
        """Close the listening connection and the pipe (safe to call twice)."""
        self._disconnect()
        if self._pipe is not None:
            pipe, self._pipe = self._pipe, None
            for fd in pipe:
                os.close(fd)

    def _open_pipe(self) -> int:
        """Return the read end of the pipe :meth:`interrupt` writes to, made on first use."""
        if self._pipe is None:
            self._pipe = os.pipe()
            for fd in self._pipe:
                os.set_blocking(fd, False)
        return self._pipe[0]

    def _should_connect(self) -> bool:
        return self._enabled and time.monotonic() >= self._retry_at and self._supported()

    def _supported(self) -> bool:
        """Return whether LISTEN can work here; turn listening off for good when it cannot."""
        alias = router.db_for_write(OutboxEvent)
        if connections[alias].vendor != "postgresql":
            self._enabled = False
        else:
            try:
                import psycopg  # noqa: F401
            except ImportError:
                logger.info("LISTEN/NOTIFY needs psycopg 3; the idle worker polls instead.")
                self._enabled = False
        return self._enabled

    def _connect(self) -> bool:
        import psycopg

        channel = OutboxEvent._meta.db_table
        try:
            self.listener = Listener.open(router.db_for_write(OutboxEvent), channel)
        except psycopg.Error as exc:
            self._failed("Could not LISTEN for new events (%s)", exc)
        else:
            self._failures = 0
            logger.info("Listening for new events (LISTEN %s).", channel)
        return True

    def _drain(self) -> bool:
        import psycopg

        assert self.listener is not None
        try:
            self.listener.drain()
        except psycopg.Error as exc:
            self._disconnect()
            self._failed("The LISTEN connection was lost (%s)", exc)
        return True

    def _failed(self, message: str, error: Exception) -> None:
        self._failures += 1
        delay = backoff_delay(self._failures, self.retry_base, self.retry_max).total_seconds()
        self._retry_at = time.monotonic() + delay
        logger.warning(message + "; polling, and trying again in %.1f s.", error, delay)

    def _disconnect(self) -> None:
        if self.listener is not None:
            listener, self.listener = self.listener, None
            listener.close()
