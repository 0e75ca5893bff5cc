"""Write events to the outbox, in the caller's database transaction.

Publishing only inserts rows: if the surrounding transaction rolls back, the events never existed.
Everything about an event is checked before the insert, so bad input raises
:class:`~django_broadcaster.exceptions.InvalidEvent` at the call site and writes nothing.

The ``a``-prefixed methods are for async code. Each runs its synchronous twin with
``sync_to_async(thread_sensitive=True)``, so it uses the same database connection as Django's
async ORM calls (``acreate()``, ``asave()``...) of the same request. That connection is in
autocommit mode unless a transaction is open in that thread, and ``transaction.atomic`` cannot be
entered from async code: to publish atomically with other writes, put them all in one synchronous
function decorated with ``sync_to_async`` that opens ``transaction.atomic()`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import router

from .attributes import ExtensionValue, format_timestamp
from .bulk import insert_rows
from .events import DEFAULT_DATACONTENTTYPE, CloudEvent
from .followups import note_published
from .models import OutboxEvent
from .rows import build_row
from .signals import event_created
from .typed import to_cloud_event


class Publisher:
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
        datacontenttype: str = DEFAULT_DATACONTENTTYPE,
        dataschema: str | None = None,
        extensions: Mapping[str, ExtensionValue] | None = None,
        using: str | None = None,
    ) -> OutboxEvent:
        """Write one event to the outbox and return its row.

        The row joins the current transaction of database ``using`` (the router's choice by
        default). ``scheduled_at`` delays delivery; ``max_retries`` overrides
        ``BROADCASTER["MAX_RETRIES"]``; ``backends`` limits delivery to those aliases (default:
        every configured backend); ``partition_key`` sets the ``partitionkey`` extension, which
        keeps events of one key in order; ``expires_at`` sets the ``expirytime`` extension: an
        event not delivered by then ends ``expired`` instead of being sent late. An empty
        ``subject`` means no subject, as in 0.1.1.

        Raises :class:`InvalidEvent` (or its subclass :class:`UnknownBackend`) naming what is wrong.
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
        using: str | None = None,
    ) -> OutboxEvent:
        """Write a typed event (a dataclass or pydantic model instance) and return its row.

        Its class names the type (``event_type``) and may give the ``source``, which ``source``
        here overrides; the data is the instance's fields (see :mod:`django_broadcaster.typed`).
        Other arguments are those of :meth:`publish_event`. Raises ``TypeError`` for an object
        that is not a typed event, and :class:`InvalidEvent` as :meth:`publish_event` does.
        """
        event = to_cloud_event(
            typed_event,
            source=source,
            subject=subject,
            dataschema=dataschema,
            extensions=extensions,
        )
        return self.publish_cloud_event(
            event,
            scheduled_at=scheduled_at,
            max_retries=max_retries,
            backends=backends,
            using=using,
        )

    def publish_cloud_event(
        self,
        cloud_event: CloudEvent,
        *,
        scheduled_at: datetime | None = None,
        max_retries: int | None = None,
        backends: Sequence[str] | None = None,
        using: str | None = None,
    ) -> OutboxEvent:
        """Write ``cloud_event`` to the outbox and return its row; see :meth:`publish_event`.

        If ``cloud_event.id`` is set it must be a UUID, and becomes the row's id.
        """
        row = build_row(cloud_event, scheduled_at, max_retries, backends)
        row.save(force_insert=True, using=using or router.db_for_write(OutboxEvent))
        note_published(1)
        event_created.send(sender=OutboxEvent, event=row)
        return row

    def publish_events(
        self,
        cloud_events: Iterable[CloudEvent],
        *,
        scheduled_at: datetime | None = None,
        max_retries: int | None = None,
        backends: Sequence[str] | None = None,
        using: str | None = None,
    ) -> list[OutboxEvent]:
        """Write many events at once and return their rows, in order.

        The rows go in one ``COPY`` on PostgreSQL with psycopg 3, and in one INSERT per 1,000
        rows elsewhere (see :mod:`django_broadcaster.bulk`).

        Every event is validated before anything is written: one bad event writes none.
        """
        rows = [build_row(event, scheduled_at, max_retries, backends) for event in cloud_events]
        insert_rows(rows, using or router.db_for_write(OutboxEvent))
        note_published(len(rows))
        for row in rows:
            event_created.send(sender=OutboxEvent, event=row)
        return rows

    async def apublish(self, typed_event: object, **kwargs: Any) -> OutboxEvent:
        """Do what :meth:`publish` does, from async code (see the module docstring)."""
        return await sync_to_async(self.publish)(typed_event, **kwargs)

    async def apublish_event(self, *args: Any, **kwargs: Any) -> OutboxEvent:
        """Do what :meth:`publish_event` does, from async code (see the module docstring)."""
        return await sync_to_async(self.publish_event)(*args, **kwargs)

    async def apublish_cloud_event(self, cloud_event: CloudEvent, **kwargs: Any) -> OutboxEvent:
        """Do what :meth:`publish_cloud_event` does, from async code (see the module docstring)."""
        return await sync_to_async(self.publish_cloud_event)(cloud_event, **kwargs)


#: The publisher to import: ``from django_broadcaster.publishers import publisher``.
publisher = Publisher()
