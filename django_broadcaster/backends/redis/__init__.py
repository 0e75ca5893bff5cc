"""A backend that appends each event to a Redis stream.

There is no official CloudEvents binding for Redis. Each stream entry carries the event in the
CloudEvents JSON format (structured mode) in the field ``cloud_event``, which version 0.1.1's
consumers read, plus 0.1.1's fields ``event_id``, ``event_type``, ``source`` and ``timestamp``
(the event time, ISO 8601).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from ...events import CloudEvent
from ...formats import to_structured_json
from ..base import BaseBackend, Rejections, secret_option_values
from ..naming import REDIS, DestinationName
from ..urls import mask_url, url_passwords
from .trimming import age_bound, consumed_bound, trim_below
from .urls import url_problem

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
    """Deliver events with ``XADD`` to the stream ``stream_name``: a name, a template over the
    event's attributes (``"events.{type}"``) or a callable taking the event (:mod:`..naming`).

    Give either ``url`` (``redis://``, ``rediss://`` or ``unix://``) or ``host``/``port``/``db``/
    ``password``. The stream keeps every entry unless one option trims it (see :meth:`trim`):
    ``retention="consumed"`` removes what every consumer group has read and acknowledged,
    ``max_age`` (a timedelta) what is older, ``max_len`` all but about that many of the newest
    entries (``MAXLEN ~``), read or not. ``client_options`` go to ``redis.Redis`` (``username``,
    ``ssl_*``, ``retry``, ...). :meth:`open` (or the first send) builds the client and
    :meth:`close` releases it. Passwords never appear in ``repr()``, log lines or exception
    messages.
    """

    #: How often :meth:`send_batch` trims the stream when ``retention`` or ``max_age`` is set;
    #: each trim costs two or three round trips (docs/performance.md).
    trim_interval = timedelta(seconds=10)

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
        max_len: int | None = None,
        retention: str | None = None,
        max_age: timedelta | None = None,
        socket_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        client_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self._require_library(_MISSING, "redis", "redis")
        self.url, self.host, self.port, self.db = url, host, port, db
        self.stream_name, self.max_len = stream_name, max_len
        self.retention, self.max_age = retention, max_age
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
        self._trim_due = 0.0  # time.monotonic() of the next trim: the first batch trims

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
        rejected: Rejections = {}
        named = self._named(events, rejected)
        request = b"".join(
            xadd_command(stream, stream_fields(event), self.max_len) for event, stream in named
        )
        try:
            results = round_trip(self._client.connection_pool, request, len(named))
        except OUTAGE_ERRORS as exc:
            raise self._unavailable(exc) from exc
        rejected.update(self._rejections([event for event, _ in named], results))
        self._trim_when_due()
        return rejected

    def trim(self) -> int:
        """Trim the stream now as ``retention`` or ``max_age`` says; return how many entries went.

        ``retention="consumed"`` keeps every entry some consumer group has not been delivered or
        has not acknowledged, and all of a stream that has no consumer group; ``max_age`` keeps
        the entries younger than that by the server's clock. Returns 0 when neither is set.
        Opens the client if needed (the caller closes it); raises redis-py's errors. Redis
        removes up to 10,000 entries a call by default (its ``LIMIT``), in whole nodes.
        """
        if self.retention is None and self.max_age is None:
            return 0
        self.open()
        assert self._client is not None
        if self.max_age is None:
            bound = consumed_bound(self._client, self.stream_name)
        else:
            bound = age_bound(self._client, self.max_age)
        return trim_below(self._client, self.stream_name, bound)

    @property
    def server(self) -> str:
        """Return where the server is, with any password masked."""
        return mask_url(self.url) if self.url else f"{self.host}:{self.port}/{self.db}"

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} alias={self.alias!r} server={self.server!r} "
            f"stream={self.stream_name!r}>"
        )

    def _named(
        self, events: Sequence[CloudEvent], rejected: Rejections
    ) -> list[tuple[CloudEvent, str]]:
        """Return each event with its stream; one whose name cannot be made goes to ``rejected``."""
        if self._stream.fixed is not None:
            return [(event, self._stream.fixed) for event in events]
        named = []
        for event in events:
            try:
                named.append((event, self._stream.resolve(event)[0]))
            except Exception as exc:  # the name is the event's or the callable's fault
                rejected[str(event.id)] = self._rejected(event, exc)
        return named

    def _rejections(self, events: Sequence[CloudEvent], results: list[Any]) -> Rejections:
        rejected: Rejections = {}
        for event, result in zip(events, results, strict=True):
            if isinstance(result, OUTAGE_ERRORS):
                raise self._unavailable(result) from result
            if isinstance(result, Exception):
                rejected[str(event.id)] = self._rejected(event, result)
        return rejected

    def _trim_when_due(self) -> None:
        """Trim once ``trim_interval`` has passed, or at once while each trim removes entries."""
        if time.monotonic() < self._trim_due:
            return
        try:
            removed = self.trim()
        except (redis.RedisError, OSError) as exc:  # the events are in: only trimming waits
            logger.warning(
                "Backend %r: could not trim the stream %r on %s: %s",
                self.alias,
                self.stream_name,
                self._where(),
                self._scrub(exc),
            )
            removed = 0
        self._trim_due = time.monotonic() + (0 if removed else self.trim_interval.total_seconds())

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
        try:
            self._stream = DestinationName(self.stream_name, REDIS)
        except ValueError as exc:
            self._improperly_configured(f"stream_name {exc}")
        self._check_trimming()
        clashes = sorted(RESERVED_CLIENT_OPTIONS.intersection(client_options))
        if clashes:
            self._improperly_configured(f"set {clashes} as backend options, not client_options")

    def _check_trimming(self) -> None:
        if self.max_len is not None and (not isinstance(self.max_len, int) or self.max_len < 1):
            self._improperly_configured("max_len must be a positive integer or None")
        if self.retention not in (None, "consumed"):
            self._improperly_configured("retention must be 'consumed' or None")
        if self.max_age is not None and not (
            isinstance(self.max_age, timedelta) and self.max_age > timedelta(0)
        ):
            self._improperly_configured("max_age must be a positive timedelta or None")
        if sum(option is not None for option in (self.max_len, self.retention, self.max_age)) > 1:
            self._improperly_configured("give one of max_len, retention and max_age, not more")
        if self._stream.fixed is None and (self.retention or self.max_age):
            self._improperly_configured("retention and max_age need a fixed stream_name")


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
    found = secret_option_values(client_options) | url_passwords(url or "")
    return frozenset(found | ({password} if password else set()))
