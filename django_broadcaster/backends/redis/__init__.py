"""A backend that appends each event to a Redis stream.

There is no official CloudEvents binding for Redis. Each stream entry carries the event in the
CloudEvents JSON format (structured mode) in the field ``cloud_event``, which version 0.1.1's
consumers read, plus 0.1.1's fields ``event_id``, ``event_type``, ``source`` and ``timestamp``
(the event time, ISO 8601).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...events import CloudEvent
from ...formats import to_structured_json
from ..base import BaseBackend, Rejections
from .urls import mask_url, url_passwords, url_problem

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from ..resp import round_trip, xadd_command
except ImportError as exc:  # the extra is not installed: building the backend says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None
    #: Errors meaning Redis cannot take any write now, whatever the event: an outage.
    OUTAGE_ERRORS: Final[tuple[type[Exception], ...]] = (
        redis.ConnectionError,
        redis.TimeoutError,
        redis.exceptions.ReadOnlyError,
        redis.exceptions.OutOfMemoryError,
        OSError,
    )

logger = logging.getLogger(__name__)

#: Set through the backend's own options, so ``client_options`` must not repeat them.
RESERVED_CLIENT_OPTIONS: Final = frozenset(
    {"url", "host", "port", "db", "password", "socket_timeout", "socket_connect_timeout"}
)
_DEFAULT_ADDRESS: Final = {"host": "localhost", "port": 6379, "db": 0, "password": None}


class RedisStreamBackend(BaseBackend):
    """Deliver events with ``XADD`` to the stream ``stream_name``.

    Give either ``url`` (``redis://``, ``rediss://`` or ``unix://``) or ``host``/``port``/``db``/
    ``password``. ``max_len`` trims the stream approximately (``MAXLEN ~``); ``None`` keeps every
    entry. ``client_options`` go to ``redis.Redis`` (``username``, ``ssl_*``, ``retry``, ...).
    :meth:`open` (or the first send) builds the client and :meth:`close` releases it. Passwords
    never appear in ``repr()``, log lines or exception messages.
    """

    def __init__(
        self,
        alias: str,
        *,
        url: str | None = None,
        host: str = "localhost",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        stream_name: str = "events",
        max_len: int | None = 10000,
        socket_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        client_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self._require_library(_MISSING, "redis", "redis")
        self.url, self.host, self.port, self.db = url, host, port, db
        self.stream_name, self.max_len = stream_name, max_len
        self._password = password
        self._check(client_options or {})
        self._client_options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            # One immediate retry replaces a stale pooled connection; a longer outage is for the
            # worker's circuit breaker, so redis-py's default seconds of backoff are skipped.
            # Not after a timeout: a server that does not answer would cost a second timeout,
            # and the writes of the first attempt may have been applied.
            "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            **(client_options or {}),
        }
        self._secrets = _configured_secrets(password, url, self._client_options)
        self._client: redis.Redis | None = None

    def open(self) -> bool:
        """Build the client if needed and return whether this call built it.

        redis-py connects on the first command, so an unreachable server surfaces as
        ``BackendUnavailable`` from :meth:`send` or :meth:`send_batch`.
        """
        if self._client is not None:
            return False
        logger.debug("Backend %r: using Redis at %s.", self.alias, self.server)
        if self.url is not None:
            self._client = redis.Redis.from_url(self.url, **self._client_options)
        else:
            self._client = redis.Redis(**self._address(), **self._client_options)
        return True

    def close(self) -> None:
        """Release the client's connections. Safe to call twice, or without :meth:`open`."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """Append ``events`` in one pipelined round trip; return the refused ones by event id.

        Opens the client if needed (the caller closes it). Raises ``BackendUnavailable``, with the
        cause chained, when Redis is unreachable or takes no writes; entries added before the
        failure stay in the stream.
        """
        if not events:
            return {}
        self.open()
        assert self._client is not None
        request = b"".join(
            xadd_command(self.stream_name, stream_fields(event), self.max_len) for event in events
        )
        try:
            results = round_trip(self._client.connection_pool, request, len(events))
        except OUTAGE_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return self._rejections(events, results)

    @property
    def server(self) -> str:
        """Return where the server is, with any password masked."""
        return mask_url(self.url) if self.url else f"{self.host}:{self.port}/{self.db}"

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} alias={self.alias!r} server={self.server!r} "
            f"stream={self.stream_name!r}>"
        )

    def _rejections(self, events: Sequence[CloudEvent], results: list[Any]) -> Rejections:
        rejected: Rejections = {}
        for event, result in zip(events, results, strict=True):
            if isinstance(result, OUTAGE_ERRORS):
                raise self._unavailable(result) from result
            if isinstance(result, Exception):
                rejected[str(event.id)] = self._rejected(event, result)
        return rejected

    def _address(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "db": self.db, "password": self._password}

    def _where(self) -> str:
        return f"Redis at {self.server}"

    def _check(self, client_options: Mapping[str, Any]) -> None:
        if self.url is not None and self._address() != _DEFAULT_ADDRESS:
            self._improperly_configured("give either url or host/port/db/password, not both")
        problem = None if self.url is None else url_problem(self.url)
        if problem:
            self._improperly_configured(problem)
        if not isinstance(self.stream_name, str) or not self.stream_name:
            self._improperly_configured("stream_name must be a non-empty string")
        if self.max_len is not None and (not isinstance(self.max_len, int) or self.max_len < 1):
            self._improperly_configured("max_len must be a positive integer or None")
        clashes = sorted(RESERVED_CLIENT_OPTIONS.intersection(client_options))
        if clashes:
            self._improperly_configured(f"set {clashes} as backend options, not client_options")


def stream_fields(event: CloudEvent) -> dict[str, str | bytes]:
    """Return the fields of the stream entry for ``event`` (see the module docstring)."""
    fields: dict[str, str | bytes] = {
        "cloud_event": to_structured_json(event),
        "event_id": str(event.id),
        "event_type": event.event_type,
        "source": event.source,
    }
    if event.time is not None:
        fields["timestamp"] = event.time.isoformat()
    return fields


def _configured_secrets(
    password: str | None, url: str | None, client_options: Mapping[str, Any]
) -> frozenset[str]:
    found = {password, *(value for key, value in client_options.items() if "password" in key)}
    strings = {value for value in found if isinstance(value, str) and value}
    return frozenset(strings | url_passwords(url or ""))
