"""Turning a CloudEvent into a new outbox row, with every check made before anything is written."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.utils import timezone

from .attributes import require_aware
from .conf import get_settings
from .events import CloudEvent, encoded_copy
from .exceptions import InvalidEvent, UnknownBackend
from .fields import keep_encoding
from .ids import new_event_id
from .models import OutboxEvent
from .tracing import current_trace_extensions


def build_row(
    event: CloudEvent,
    scheduled_at: datetime | None,
    max_retries: int | None,
    backends: Sequence[str] | None,
) -> OutboxEvent:
    """Return the unsaved outbox row for ``event``; raise :class:`InvalidEvent` naming any problem.

    Everything is checked here, before any insert: the data (strict JSON, at most
    ``BROADCASTER["MAX_DATA_SIZE"]`` bytes), the attributes' lengths, ``scheduled_at`` (aware),
    ``max_retries`` (``None`` means ``BROADCASTER["MAX_RETRIES"]``) and the ``backends``
    aliases (:class:`UnknownBackend`). The row gets the current trace context as extensions,
    its own copy of the data, and the data's JSON text for its insert
    (:mod:`django_broadcaster.fields`).
    """
    config = get_settings()
    text, data = encoded_copy(event.data, max_size=config.max_data_size)
    _check_lengths(event)
    now = timezone.now()
    if scheduled_at is not None:
        require_aware("scheduled_at", scheduled_at)
    if max_retries is None:
        max_retries = config.max_retries
    elif isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidEvent(f"max_retries must be a non-negative integer, got {max_retries!r}.")
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
        backends=_checked_aliases(backends, config.backends),
    )
    keep_encoding(row, text)  # the insert sends this text; no second encoding
    return row


def _row_id(event_id: str | None) -> uuid.UUID:
    if event_id is None:
        return new_event_id()
    try:
        return uuid.UUID(event_id)
    except ValueError as exc:
        raise InvalidEvent(
            f"id must be a UUID (the outbox row's id), got {event_id!r}; leave it unset to get one."
        ) from exc


def _checked_aliases(
    backends: Sequence[str] | None, configured: Mapping[str, object]
) -> list[str] | None:
    if backends is None:
        return None
    if isinstance(backends, str):
        raise InvalidEvent(f"backends must be a list of aliases, got the string {backends!r}.")
    unknown = [alias for alias in backends if alias not in configured]
    if unknown:
        raise UnknownBackend(
            f"Unknown backend alias {unknown[0]!r}; configured aliases are {sorted(configured)}."
        )
    return list(backends)


def _check_lengths(event: CloudEvent) -> None:
    for attribute, column in (
        ("event_type", "event_type"),
        ("source", "source"),
        ("subject", "subject"),
        ("dataschema", "data_schema"),
        ("datacontenttype", "data_content_type"),
    ):
        value = getattr(event, attribute)
        limit = getattr(OutboxEvent._meta.get_field(column), "max_length", None)
        if value is not None and limit is not None and len(value) > limit:
            raise InvalidEvent(
                f"{attribute} is {len(value)} characters long; the limit is {limit}."
            )
