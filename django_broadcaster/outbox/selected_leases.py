"""Leasing in two statements: select the rows, then lease those still due (a compare-and-set).

For databases whose ``UPDATE`` cannot return the rows it changed, and for claims of given rows
(eager delivery); elsewhere :func:`.leases.claim` leases in one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, Final

from .models import EVENT_FIELDS, OutboxEvent

#: The columns a worker needs to deliver a row and record what happened to it.
CLAIMED_FIELDS: Final = (
    *EVENT_FIELDS, "scheduled_at", "expires_at", "backends", "delivery", "retry_count",
    "max_retries",
)  # fmt: skip


def lease_in_two_steps(
    ids: Collection[uuid.UUID],
    database: str,
    limit: int,
    now: datetime,
    token: uuid.UUID,
    leased_until: datetime,
    floor: datetime | None = None,
) -> list[dict[str, Any]]:
    """Select up to ``limit`` claimable rows (of ``ids`` if any, from ``floor`` if any), then
    lease those still due to ``token``; return the leased rows' values by field name.

    The caller runs both statements in one transaction.
    """
    outbox = OutboxEvent.objects.using(database)
    due = outbox.claimable(now).filter(pk__in=ids) if ids else outbox.claimable(now)
    due = due.filter(scheduled_at__gte=floor) if floor is not None else due
    ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    outbox.due(now).filter(pk__in=ids).update(lease_token=token, leased_until=leased_until)
    leased = outbox.filter(pk__in=ids, lease_token=token)
    return list(leased.values(*CLAIMED_FIELDS))
