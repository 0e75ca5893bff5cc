"""The outbox table and the queries that claim its rows.

A row is written by the publisher in the caller's transaction and read by the worker. The worker
*claims* due rows for a while (a lease): it sets ``leased_until`` to the lease's end and stamps a
``lease_token``. A worker that dies simply lets the lease run out, and the rows become due again.

The lease lives in columns that no index holds (nor any index's condition), so on PostgreSQL
taking a lease and giving it back are HOT updates: the row is rewritten in its page and no index
entry is added. ``scheduled_at`` moves only when a retry or a deferral moves the event's time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .events import CloudEvent
from .fields import EventDataField
from .ids import new_event_id as new_event_id  # the path migrations refer to

if TYPE_CHECKING:
    from .claims import Claim


class Status:
    """Where an event is in its life: waiting, delivered everywhere, given up on, or too late.

    ``expired`` is for an event whose ``expires_at`` (the ``expirytime`` extension) passed
    before it reached every destination: it is not sent late.
    """

    PENDING: Final = "pending"
    PUBLISHED: Final = "published"
    FAILED: Final = "failed"
    EXPIRED: Final = "expired"
    choices: Final = [
        (PENDING, "Pending"),
        (PUBLISHED, "Published"),
        (FAILED, "Failed"),
        (EXPIRED, "Expired"),
    ]


class OutboxEventQuerySet(models.QuerySet["OutboxEvent"]):
    """Queries over the outbox."""

    def due(self, now: datetime) -> OutboxEventQuerySet:
        """Return the pending events whose time has come and that no worker holds, oldest first.

        Served by the partial index ``outbox_due_idx``, so the cost does not grow with history.
        """
        due = self.filter(status=Status.PENDING, scheduled_at__lte=now).not_held(now)
        return cast(OutboxEventQuerySet, due.order_by("scheduled_at"))

    def claimable(self, now: datetime) -> OutboxEventQuerySet:
        """Return the due events a worker may take now, oldest first.

        An event with a partition key is claimable only while no earlier event of its key is
        still pending (waiting for a retry, or held by a worker), so each key's events reach every
        destination in publish order. Events without a key are not held back.
        """
        earlier_of_key = self.model.objects.filter(
            Q(created_at__lt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), pk__lt=OuterRef("pk")),
            partition_key=OuterRef("partition_key"),
            status=Status.PENDING,
        )
        heads = self.due(now).filter(Q(partition_key__isnull=True) | ~Exists(earlier_of_key))
        return cast(OutboxEventQuerySet, heads)

    def claim(self, limit: int, lease: timedelta) -> Claim:
        """Lease up to ``limit`` claimable events to the caller and return them, oldest first.

        Claims take from the whole outbox of this queryset's database: on a filtered queryset
        this raises ``TypeError``. See :mod:`django_broadcaster.claims` for how. The caller
        records the outcomes with the claim's token before the lease ends, or the rows become
        claimable again.
        """
        from .claims import claim  # claims builds on this module

        if self.query.has_filters():
            raise TypeError("claim() leases from the whole outbox; it cannot be filtered.")
        return claim(self.db, limit, lease)

    def oldest_due(self, now: datetime) -> datetime | None:
        """Return when the oldest due event became due, or ``None`` when none is due.

        An event whose lease ran out (its worker died) counts from its ``scheduled_at``: it has
        been waiting since then.
        """
        return self.due(now).values_list("scheduled_at", flat=True).first()

    def in_flight(self, now: datetime) -> OutboxEventQuerySet:
        """Return the events a worker holds right now (claimed, lease not yet over)."""
        return cast(OutboxEventQuerySet, self.filter(_held(now), status=Status.PENDING))

    def not_held(self, now: datetime) -> OutboxEventQuerySet:
        """Return these events but those a worker holds at ``now`` (whatever their status).

        A plain condition, not a subquery, so it also works in an UPDATE or DELETE of the table.
        """
        return cast(OutboxEventQuerySet, self.exclude(_held(now)))

    def retry_now(self) -> int:
        """Make these events due now, failed ones with their retries restored; return the count.

        Published events and events a worker holds right now are left alone. This is what the
        ``outbox_requeue`` command and the admin's "retry now" action do.
        """
        now = timezone.now()
        waiting = self.filter(status__in=[Status.PENDING, Status.FAILED]).not_held(now)
        requeued = waiting.update(
            status=Status.PENDING, retry_count=0, scheduled_at=now, **RELEASED
        )
        return int(requeued)

    def leased_by(self, token: uuid.UUID, ids: Sequence[uuid.UUID]) -> OutboxEventQuerySet:
        """Return those of the rows ``ids`` still held under the lease ``token``."""
        return cast(
            OutboxEventQuerySet, self.filter(pk__in=ids, lease_token=token, status=Status.PENDING)
        )

    def release(self, claim: Claim) -> int:
        """Give back the rows of ``claim`` still held under its lease; return how many.

        They are due again at once, in their place among the due rows (``scheduled_at`` is
        theirs, not the lease's), and no retry is spent.
        """
        held = self.leased_by(claim.token, [row.pk for row in claim.rows])
        return int(held.update(**RELEASED))


class OutboxEvent(models.Model):
    """One event waiting in, or delivered from, the outbox.

    Its CloudEvent ``id`` is ``str(self.id)``. ``backends`` lists the aliases the publisher chose
    (``None`` means every configured backend); ``delivered`` lists the destinations (backend
    aliases and ``handler:`` names) that already accepted the event, so a retry redoes only the
    rest.
    """

    id = models.UUIDField(primary_key=True, default=new_event_id, editable=False)
    event_type = models.CharField(max_length=255)
    source = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, blank=True)
    data_content_type = models.CharField(max_length=100, default="application/json")
    data_schema = models.CharField(max_length=255, blank=True)
    data = EventDataField(null=True, blank=True)
    extensions = models.JSONField(default=dict, blank=True)
    partition_key = models.CharField(
        max_length=255, null=True, blank=True, help_text="The partitionkey extension, if any."
    )
    time = models.DateTimeField(default=timezone.now, help_text="The CloudEvent's time.")
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Not delivered after this moment (expirytime)."
    )

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    scheduled_at = models.DateTimeField(
        default=timezone.now, help_text="When a worker may next claim the event."
    )
    published_at = models.DateTimeField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    max_retries = models.PositiveIntegerField(default=5)
    last_error = models.TextField(blank=True)

    backends = models.JSONField(null=True, blank=True)
    delivered = models.JSONField(default=list, blank=True)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    leased_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="A worker holds the event until then."
    )

    objects = OutboxEventQuerySet.as_manager()

    class Meta:
        db_table = "outbox_events"
        ordering = ["-created_at"]
        verbose_name = "outbox event"
        indexes = [
            models.Index(
                fields=["scheduled_at"], name="outbox_due_idx", condition=Q(status="pending")
            ),
            models.Index(fields=["event_type", "created_at"], name="outbox_type_created_idx"),
            models.Index(
                fields=["partition_key", "created_at"],
                name="outbox_pending_key_idx",
                condition=Q(status="pending", partition_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"

    def as_cloud_event(self) -> CloudEvent:
        """Return the immutable CloudEvent this row stands for."""
        return event_from_columns({name: getattr(self, name) for name in EVENT_FIELDS})

    def wants_backend(self, alias: str) -> bool:
        """Return whether the publisher wanted this event sent to backend ``alias``."""
        return wants_backend(self.backends, alias)


#: The column values of a row that no worker holds.
RELEASED: Final = {"lease_token": None, "leased_until": None}


def _held(now: datetime) -> Q:
    """Return the condition of a row a worker holds at ``now`` (its lease has not run out)."""
    return Q(leased_until__gt=now)


#: The fields of an outbox row that make up its CloudEvent.
EVENT_FIELDS: Final = (
    "id",
    "event_type",
    "source",
    "subject",
    "data_content_type",
    "data_schema",
    "data",
    "extensions",
    "time",
)


def event_from_columns(
    columns: Mapping[str, Any], build: Callable[..., CloudEvent] = CloudEvent
) -> CloudEvent:
    """Return the CloudEvent of an outbox row, from its ``EVENT_FIELDS`` values by field name.

    ``build`` makes the event: ``CloudEvent`` validates it, ``CloudEvent.trusted`` does not.
    """
    return build(
        event_type=columns["event_type"],
        source=columns["source"],
        data=columns["data"],
        subject=columns["subject"] or None,
        id=str(columns["id"]),
        time=columns["time"],
        datacontenttype=columns["data_content_type"],
        dataschema=columns["data_schema"] or None,
        extensions=columns["extensions"] or {},
    )


def outbox_field(name: str) -> models.Field[Any, Any]:
    """Return the field ``name`` of the outbox model (for SQL the worker writes by hand)."""
    return cast("models.Field[Any, Any]", OutboxEvent._meta.get_field(name))


def wants_backend(backends: Sequence[str] | None, alias: str) -> bool:
    """Return whether a row whose publisher chose ``backends`` goes to backend ``alias``.

    ``None`` means every configured backend.
    """
    return backends is None or alias in backends


from .consumers.inbox import InboxEntry  # noqa: E402,F401  (the inbox table, for Django to find)
