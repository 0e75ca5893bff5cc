"""The publisher's async twins: each ``a``-prefixed method runs its synchronous twin with
``sync_to_async``, in the thread that holds the request's database connection (docs/async.md).

They take the same arguments as their twins and raise the same errors; the event is written in
that thread's transaction, so in autocommit it is committed when the call returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async

from .events import CloudEvent
from .outbox.models import OutboxEvent


class AsyncPublishing:
    """The ``a``-prefixed twins of :class:`~.publishers.Publisher`'s methods (a mixin)."""

    publish: Callable[..., OutboxEvent]
    publish_event: Callable[..., OutboxEvent]
    publish_cloud_event: Callable[..., OutboxEvent]

    async def apublish(self, typed_event: object, **kwargs: Any) -> OutboxEvent:
        """Do what :meth:`~.publishers.Publisher.publish` does, from async code."""
        return await sync_to_async(self.publish)(typed_event, **kwargs)

    async def apublish_event(self, *args: Any, **kwargs: Any) -> OutboxEvent:
        """Do what :meth:`~.publishers.Publisher.publish_event` does, from async code."""
        return await sync_to_async(self.publish_event)(*args, **kwargs)

    async def apublish_cloud_event(self, cloud_event: CloudEvent, **kwargs: Any) -> OutboxEvent:
        """Do what :meth:`~.publishers.Publisher.publish_cloud_event` does, from async code."""
        return await sync_to_async(self.publish_cloud_event)(cloud_event, **kwargs)
