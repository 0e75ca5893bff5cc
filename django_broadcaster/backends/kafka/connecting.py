"""Build kafka-python's producer on a thread of its own, and say why it could not connect.

kafka-python 3 retries a failed bootstrap connection until ``bootstrap_timeout_ms``, then raises
a bare ``KafkaTimeoutError``: why each attempt failed (a refused connection, a name that does
not resolve, SASL or TLS refused) is only in the records it logs, whose arguments hold the
connection and the exception. Its TLS handshake has no timeout at all: a listener that never
answers holds the constructor forever. So :class:`ProducerBuild` runs the constructor on a
thread whose records :class:`ConnectionWatch` reads: the caller stops waiting once every
bootstrap server has failed, or at its timeout, and the thread ends on its own. The next attempt
waits for the same thread while it may still connect (a TLS handshake that hangs holds one thread,
not one per attempt), and starts another once it has failed; a producer built after all by a
thread nobody waits for is closed.

That thread's records are demoted to DEBUG, since the backend reports the failure itself, once
(:class:`~.failures.ErrorLog`), where kafka-python logs 3 to 4 lines per reconnection. With the
``kafka`` loggers set above ERROR, kafka-python makes no records to read: failures then show as
timeouts. Imported only when kafka-python is installed.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from kafka import errors as kafka_errors
from kafka.net.connection import KafkaConnection

from .failures import AUTHENTICATION, NOT_AUTHORIZED, TLS, UNREACHABLE, Problem, problem


def _errors(*names: str) -> tuple[type[Exception], ...]:
    return tuple(getattr(kafka_errors, name) for name in names if hasattr(kafka_errors, name))


#: kafka-python's errors by what they mean, most specific first (a TLS failure is a
#: ``KafkaConnectionError`` caused by an ``ssl.SSLError``: see :func:`describe`).
KINDS: Final = (
    (_errors("SaslAuthenticationFailedError", "UnsupportedSaslMechanismError"), AUTHENTICATION),
    (_errors("IllegalSaslStateError"), AUTHENTICATION),
    (_errors("AuthorizationError"), NOT_AUTHORIZED),
    (_errors("KafkaConnectionError", "NoBrokersAvailable"), UNREACHABLE),
)


def describe(error: BaseException, node: str = "") -> Problem | None:
    """Return what kafka-python's ``error`` says failed (at ``node``), or ``None`` if unknown."""
    detail = _text(error) if not node else f"{node}: {_text(error)}"
    if isinstance(error, kafka_errors.KafkaConnectionError) and isinstance(
        error.__cause__ or error.__context__, ssl.SSLError
    ):
        return problem(TLS, detail)
    for types, kind in KINDS:
        if isinstance(error, types):
            return problem(kind, detail)
    return None


class ProducerBuild:
    """One call of ``build`` (kafka-python's producer constructor) on a thread of its own."""

    def __init__(self, build: Callable[[], Any], servers: int, name: str) -> None:
        self._build, self._servers = build, servers
        self._lock = threading.Lock()
        self._settled = threading.Event()  # built, raised, or every server failed
        self._failures: dict[str, BaseException] = {}  # the latest error of each server
        self._abandoned = self.done = False
        self.producer: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def wait(self, timeout: float) -> Any:
        """Return the producer; raise why there is none after up to ``timeout`` seconds.

        Raises :class:`NotConnected` with the failures seen (at once when every bootstrap server
        has failed), or the constructor's error when it raised before any connection failed.
        """
        self._settled.wait(timeout)
        with self._lock:
            producer, error, failures = self.producer, self.error, dict(self._failures)
        if producer is not None:
            return producer
        if error is not None and not failures:
            raise error
        raise NotConnected(failures, every_server=len(failures) >= self._servers)

    @property
    def usable(self) -> bool:
        """Return whether waiting for this build may still give a producer.

        Not when it has ended without one, nor once every bootstrap server has failed: its thread
        retries until its timeout, but a new build finds out faster how the cluster is now.
        """
        with self._lock:
            return (self.producer is not None or not self.done) and (
                len(self._failures) < self._servers
            )

    def failed(self, node: str, error: BaseException) -> None:
        """Note that a connection to ``node`` failed with ``error`` (the watch calls it)."""
        with self._lock:
            self._failures.pop(node, None)  # keep the newest last
            self._failures[node] = error
            if len(self._failures) >= self._servers:
                self._settled.set()

    def abandon(self) -> None:
        """Close the producer, now or once built: nobody will take it."""
        with self._lock:
            self._abandoned = True
            producer, self.producer = self.producer, None
        if producer is not None:
            producer.close(timeout=0)

    def _run(self) -> None:
        producer: Any = None
        with WATCH.watching(self):
            try:
                producer = self._build()
            except Exception as exc:  # handed to whoever waits
                self.error = exc
        with self._lock:
            self.done = True
            abandoned = self._abandoned
            if not abandoned:
                self.producer = producer
        self._settled.set()
        if abandoned and producer is not None:
            producer.close(timeout=0)


class NotConnected(Exception):
    """No producer: ``failures`` holds the latest error of each bootstrap node that failed.

    ``every_server`` tells whether each bootstrap server failed (else the time ran out).
    """

    def __init__(self, failures: dict[str, BaseException], *, every_server: bool) -> None:
        super().__init__("; ".join(f"{node}: {_text(error)}" for node, error in failures.items()))
        self.failures, self.every_server = failures, every_server

    def latest(self) -> tuple[str, BaseException] | None:
        """Return the node that failed last and its error, or ``None`` if none failed."""
        return next(reversed(self.failures.items()), None)


class ConnectionWatch(logging.Filter):
    """Read kafka-python's failed connections from the records of the threads building one.

    Installed on every ``kafka.*`` logger; records of other threads pass untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self._builds: dict[int, ProducerBuild] = {}
        self._installed = threading.Lock()

    @contextmanager
    def watching(self, build: ProducerBuild) -> Iterator[None]:
        """Read the records of the current thread, for ``build``, within the block."""
        self._install()
        thread = threading.get_ident()
        self._builds[thread] = build
        try:
            yield
        finally:
            del self._builds[thread]

    def filter(self, record: logging.LogRecord) -> bool:
        build = self._builds.get(record.thread or 0)
        if build is None:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        connection = next((a for a in args if isinstance(a, KafkaConnection)), None)
        error = next((a for a in args if isinstance(a, BaseException)), None)
        if connection is not None and error is not None:
            build.failed(str(connection.node_id), error)
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True

    def _install(self) -> None:
        with self._installed:  # kafka-python's modules, so its loggers, are all imported by now
            for name, logger in list(logging.Logger.manager.loggerDict.items()):
                if name.startswith("kafka.") and isinstance(logger, logging.Logger):
                    logger.addFilter(self)  # a no-op for a filter already there


#: The one watch, shared by every KafkaBackend of the process.
WATCH: Final = ConnectionWatch()


def _text(error: BaseException) -> str:
    text, name = str(error), type(error).__name__
    return text if name in text else f"{name}: {text}" if text else name
