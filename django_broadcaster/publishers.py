"""Write events to the outbox, in the caller's transaction: they exist only if it commits.

Bad input raises :class:`~.exceptions.InvalidEvent` before any SQL, alike on every database, so the
caller's transaction goes on. The ``a``-prefixed twins come from :mod:`.async_publishing`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Final

from django.db import router
from django.utils import timezone

from .async_publishing import AsyncPublishing
from .backends import checked_aliases
from .commands import COMMANDS
from .conf import MAX_RETRIES_LIMIT, PRIORITIES, get_settings
from .events import (
    DEFAULT_DATACONTENTTYPE,
    CloudEvent,
    ExtensionValue,
    format_timestamp,
    require_aware,
)
from .exceptions import InvalidEvent
from .outbox.bulk import insert_rows
from .outbox.deliveries import route_to_handlers
from .outbox.models import DestinationState, OutboxEvent, keep_encoding, new_event_id, outbox_field
from .registry import event_registry
from .routing import apply_route, route_for
from .signals import event_created
from .telemetry import current_trace_extensions
from .typed import to_cloud_event
from .validation import check_data

_published: ContextVar[int] = ContextVar("django_broadcaster_published", default=0)
MAX_DATA_DEPTH: Final = 500  #: How deep data may nest arrays and objects, alike everywhere.
_COLUMNS: Final = {"dataschema": "data_schema", "datacontenttype": "data_content_type"}
_LIMITS: Final = {  # each attribute's column length (partition_key: the partitionkey extension)
    name: outbox_field(_COLUMNS.get(name, name)).max_length or 0
    for name in ("event_type", "source", "subject", *_COLUMNS, "partition_key")
}
_UNSTORABLE: Final = re.compile(r"\\u(?:0000|d[89ab]..(?!\\ud[c-f])|(?<!\\ud[89ab]..\\u)d[c-f]..)")
_BRACKETS: Final = str.maketrans("{}", "[]", "".join({chr(n) for n in range(128)} - set('[]{}"')))


class Publisher(AsyncPublishing):
    """Turn events into outbox rows. Use the module-level :data:`publisher`."""

    def publish_event(
        self,
        event_type: str,
        source: str,
        data: Any = None,
        *,
        subject: str | None = None,
        scheduled_at: datetime | None = None,
        max_retries: int | None = None,
        backends: Sequence[str] | None = None,
        partition_key: str | None = None,
        expires_at: datetime | None = None,
        priority: int | None = None,
        datacontenttype: str = DEFAULT_DATACONTENTTYPE,
        dataschema: str | None = None,
        extensions: Mapping[str, ExtensionValue] | None = None,
        using: str | None = None,
    ) -> OutboxEvent:
        """Write one event to the outbox and return its row.

        It joins the transaction of database ``using`` (default: the router's). ``scheduled_at``
        delays delivery; ``max_retries`` overrides ``MAX_RETRIES``; ``backends`` limits delivery
        to those aliases; ``partition_key`` (``partitionkey``) keeps a key's events in order;
        after ``expires_at`` (``expirytime``) it is ``expired``, not sent; ``priority`` (-100 to
        100) puts it before lower ones due with it. Left out, these come from the event's route
        (:mod:`.routing`). An empty ``subject`` means none. Raises :class:`InvalidEvent`.
        """
        all_extensions = dict(extensions or {})
        if partition_key is not None:
            all_extensions["partitionkey"] = partition_key
        if expires_at is not None:
            all_extensions["expirytime"] = format_timestamp(expires_at, "expires_at")
        event = CloudEvent(
            event_type=event_type,
            source=source,
            data=data,
            subject=subject or None,
            datacontenttype=datacontenttype,
            dataschema=dataschema,
            extensions=all_extensions,
        )
        return self.publish_cloud_event(
            event,
            scheduled_at=scheduled_at,
            max_retries=max_retries,
            backends=backends,
            priority=priority,
            using=using,
        )

    def publish(
        self,
        typed_event: object,
        *,
        source: str | None = None,
        subject: str | None = None,
        scheduled_at: datetime | None = None,
        max_retries: int | None = None,
        backends: Sequence[str] | None = None,
        dataschema: str | None = None,
        extensions: Mapping[str, ExtensionValue] | None = None,
        priority: int | None = None,
        using: str | None = None,
    ) -> OutboxEvent:
        """Write a typed event (a dataclass or pydantic model instance) and return its row.

        Its class names the type and may give a ``source`` (``source`` overrides it); its fields
        are the data (:mod:`.typed`). Else as :meth:`publish_event`; ``TypeError`` if it is neither.
        With ``VALIDATE_DATA`` on, data that breaks the class's JSON Schema raises ``InvalidEvent``.
        """
        attributes = {"source": source, "subject": subject, "dataschema": dataschema}
        event = to_cloud_event(typed_event, extensions=extensions, **attributes)
        options = scheduled_at, max_retries, backends, priority
        return self._save(_build_row(event, *options, type(typed_event)), using)

    def publish_cloud_event(
        self,
        cloud_event: CloudEvent,
        *,
        scheduled_at: datetime | None = None,
        max_retries: int | None = None,
        backends: Sequence[str] | None = None,
        priority: int | None = None,
        using: str | None = None,
    ) -> OutboxEvent:
        """Write ``cloud_event`` like :meth:`publish_event`; a set ``id`` must be a UUID."""
        row = _build_row(cloud_event, scheduled_at, max_retries, backends, priority)
        return self._save(row, using)

    def _save(self, row: OutboxEvent, using: str | None) -> OutboxEvent:
        row.save(force_insert=True, using=using or router.db_for_write(OutboxEvent))
        _published.set(_published.get() + 1)
        event_created.send(sender=OutboxEvent, event=row)
        return row

    def publish_events(
        self,
        cloud_events: Iterable[CloudEvent],
        *,
        scheduled_at: datetime | None = None,
        max_retries: int | None = None,
        backends: Sequence[str] | None = None,
        priority: int | None = None,
        using: str | None = None,
    ) -> list[OutboxEvent]:
        """Write many events at once and return their rows, in order; one bad event writes none."""
        options = scheduled_at, max_retries, backends, priority
        rows = [_build_row(event, *options) for event in cloud_events]
        insert_rows(rows, using or router.db_for_write(OutboxEvent))
        _published.set(_published.get() + len(rows))
        for row in rows:
            event_created.send(sender=OutboxEvent, event=row)
        return rows


#: The publisher to import: ``from django_broadcaster.publishers import publisher``.
publisher = Publisher()
OutboxPublisher = Publisher  #: 0.1.1's name of :class:`Publisher`.


def _build_row(
    event: CloudEvent,
    scheduled_at: datetime | None,
    max_retries: int | None,
    backends: Sequence[str] | None,
    priority: int | None,
    typed: type | None = None,
) -> OutboxEvent:
    """Return the unsaved row for ``event`` (of the class ``typed``, if any): routed, validated,
    with the trace context, its own copy of the data and its JSON; raise :class:`InvalidEvent`."""
    config = get_settings()
    route = route_for(event, config) if config.routes else None  # no rules, nothing to look up
    if route is not None:
        options = apply_route(route, event, backends, max_retries, priority)
        event, backends, max_retries, priority = options
    if route.validates(config.validate_data) if route else config.validate_data:
        check_data(event, typed, route)  # jsonschema is imported by the first check
    text, data = encoded_copy(event.data, max_size=config.max_data_size)
    aliases = None if backends is None else checked_aliases(backends, config.backends)
    _check_lengths(event)
    now = timezone.now()
    require_aware("scheduled_at", scheduled_at or now)
    max_retries = config.max_retries if max_retries is None else max_retries
    _check_integer("max_retries", max_retries, range(MAX_RETRIES_LIMIT + 1), InvalidEvent)
    priority = 0 if priority is None else priority
    _check_integer("priority", priority, PRIORITIES, TypeError)
    row = OutboxEvent(
        id=_row_id(event.id),
        event_type=event.event_type,
        source=event.source,
        subject=event.subject or "",
        data_content_type=event.datacontenttype,
        data_schema=event.dataschema or "",
        data=data,  # the row's own copy: the caller's object may change after this call
        extensions={**current_trace_extensions(), **event.extensions},
        partition_key=event.partition_key,
        expires_at=event.expires_at,
        time=event.time or now,
        created_at=now,
        scheduled_at=scheduled_at or now,
        max_retries=max_retries,
        priority=priority,
        backends=aliases,
        delivery={a: {"state": DestinationState.PENDING, "attempts": 0} for a in aliases or ()},
    )
    keep_encoding(row, text)  # the insert sends this text; no second encoding
    routed = event.event_type in COMMANDS or event_registry.predicates  # see outbox.deliveries
    return route_to_handlers(row, event, event_registry) if routed else row


def _row_id(event_id: str | None) -> uuid.UUID:
    if event_id is None:
        return new_event_id()
    try:
        return uuid.UUID(event_id)
    except ValueError as exc:
        raise InvalidEvent(f"id must be a UUID, not {event_id!r}; leave it unset for one.") from exc


def _check_integer(name: str, value: object, allowed: range, wrong_type: type[Exception]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    if value not in allowed:
        raise InvalidEvent(f"{name} must be from {allowed[0]} to {allowed[-1]}, got {value}.")


def _check_lengths(event: CloudEvent) -> None:
    for name, limit in _LIMITS.items():
        value = getattr(event, name)
        if value is not None and len(value) > limit:
            raise InvalidEvent(f"{name} is {len(value)} characters long; the limit is {limit}.")


def published_so_far() -> int:
    """Return how many events the publisher has written in this context (thread or task)."""
    return _published.get()


def encoded_copy(data: Any, *, max_size: int | None = None) -> tuple[str, Any]:
    """Return ``data`` as strict JSON text, and a copy of ``data`` decoded from that text.

    Strict: JSON's own types only (``dict`` with string keys, ``list``, ``str``, ``int``, ``float``,
    ``bool``, ``None``), no NaN or Infinity, nothing a database refuses. ``max_size`` limits the
    text's bytes, one a character: it is ASCII (``ensure_ascii``). The copy shares no object with
    ``data``. Raises :class:`InvalidEvent`."""
    try:
        text = json.dumps(data, allow_nan=False, separators=(",", ":"))
        copy = json.loads(text)
        changed = copy != data
    except RecursionError as exc:
        raise InvalidEvent(f"data nests too deeply to encode ({exc}).") from exc
    except ValueError as exc:
        raise InvalidEvent(f"data is not strict JSON ({exc}; no NaN or Infinity).") from exc
    except TypeError as exc:
        raise InvalidEvent(
            f"data must be JSON-serializable ({exc}); make dates, decimals and UUIDs strings first."
        ) from exc
    _check_storable(text)
    if changed:
        raise InvalidEvent(
            "data would change when encoded as JSON: tuples become lists, non-string keys strings."
        )
    if max_size is not None and len(text) > max_size:
        raise InvalidEvent(
            f"data is {len(text)} bytes, over the limit of {max_size} bytes (MAX_DATA_SIZE)."
        )
    return text, copy


def _check_storable(text: str) -> None:
    """Raise :class:`InvalidEvent` if the ASCII JSON ``text`` holds NUL or a lone surrogate (which
    PostgreSQL refuses), or nests over :data:`MAX_DATA_DEPTH` levels of arrays and objects. Both
    show as escapes; escaped backslashes and quotes aside, each quote opens or closes a string."""
    plain = text.replace("\\\\", "_") if "\\" in text else None  # each backslash left: an escape
    if plain and (found := _UNSTORABLE.search(plain)):
        raise InvalidEvent(f"data holds {found[0]}: NUL and lone surrogates cannot be stored.")
    if len(text) > 2 * MAX_DATA_DEPTH and text.count("[") + text.count("{") > MAX_DATA_DEPTH:
        nesting = (plain or text).replace('\\"', "").translate(_BRACKETS).replace('""', "")
        nesting = "".join(nesting.split('"')[::2])  # out with the strings that held brackets
        for _ in range(MAX_DATA_DEPTH):
            if not (nesting := nesting.replace("[]", "")):  # the innermost level goes
                return
        raise InvalidEvent(f"data nests over {MAX_DATA_DEPTH} levels of arrays and objects.")
