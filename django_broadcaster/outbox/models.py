"""The outbox table: one row per event, written by the publisher and leased by workers.

A row is inserted in the publisher's transaction; a worker leases due rows (:mod:`.leases`) and
records what became of them (:mod:`.outcomes`). The lease lives in columns no index holds, so on
PostgreSQL taking and giving it back are HOT updates (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypedDict, cast

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.signals import post_init, pre_save
from django.utils import timezone

from ..events import CloudEvent


class Status(models.TextChoices):
    """Where an event is: waiting, delivered everywhere, given up on, or too late (``expired``:
    its ``expires_at`` passed before it reached every destination, so it is not sent late)."""

    PENDING = "pending"
    PUBLISHED = "published"
    FAILED = "failed"
    EXPIRED = "expired"


class DestinationState(models.TextChoices):
    """Where an event stands with one destination (``rejected`` spends a retry, not the rest)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"


class DestinationEntry(TypedDict, total=False):
    """One destination's entry in ``OutboxEvent.delivery``: its state, the deliveries tried there,
    why the last failed, when it ended (RFC 3339, UTC), and the alias of its dead letter."""

    state: str
    attempts: int
    error: str
    at: str
    dead_letter: str


_stamp_lock = threading.Lock()
_last_stamp = 0  # of the last id made in this process: milliseconds << 12 | a 12-bit counter


def new_event_id() -> uuid.UUID:
    """Return a new time-ordered UUID (version 7, RFC 9562), greater than the last one made here.

    New rows land at the end of the primary key's index; one publisher's events sort in order.
    """
    global _last_stamp
    with _stamp_lock:  # within a millisecond, or after the clock stepped back, count on
        _last_stamp = stamp = max(time.time_ns() // 1_000_000 << 12, _last_stamp + 1)
    milliseconds, counter = divmod(stamp, 1 << 12)
    value = (milliseconds & (2**48 - 1)) << 80 | 0x7 << 76 | counter << 64
    value |= 0b10 << 62 | int.from_bytes(os.urandom(8), "big") >> 2  # variant, 62 random bits
    return uuid.UUID(int=value)


@dataclass(frozen=True)
class _Encoded:
    value: Any
    text: str  # the JSON of value, made when the publisher checked it


class _AsEncoded(json.JSONEncoder):
    def encode(self, o: Any) -> str:
        return str(o.text)


class EventDataField(models.JSONField):
    """The outbox's ``data``: a ``JSONField`` whose insert can send the publisher's JSON text.

    The publisher encodes the data to check it, and :func:`keep_encoding` leaves that text on the
    new row, so that its insert does not encode the data again (docs/performance.md).
    """

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        """Return the kept text while the row is inserted with the data it encodes, else the data
        (Django 6.0 asks twice per insert); the first other write drops the text."""
        value = super().pre_save(model_instance, add)
        encoded = model_instance.__dict__.get(_ENCODING)
        if encoded is not None and add and model_instance._state.adding and encoded.value is value:
            return encoded
        model_instance.__dict__.pop(_ENCODING, None)
        return value

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        """Return ``value`` as the database takes JSON; kept text goes as it is."""
        if isinstance(value, _Encoded):
            return connection.ops.adapt_json_value(value, _AsEncoded)
        return super().get_db_prep_value(value, connection, prepared)


_ENCODING: Final = "_data_encoding"


def keep_encoding(row: models.Model, text: str) -> None:
    """Let the insert of ``row`` send ``text``, the JSON of ``row.data``, without encoding it.

    ``text`` must decode to ``row.data``. Replacing ``row.data`` before the insert makes the
    insert encode the new value instead; a change made in place would not be seen, so nothing is
    kept while a ``post_init`` or ``pre_save`` receiver could reach the row first.
    """
    data = row.__dict__["data"]
    if data is None or any(signal.has_listeners(type(row)) for signal in (post_init, pre_save)):
        return
    row.__dict__[_ENCODING] = _Encoded(data, text)


class OutboxEventQuerySet(models.QuerySet["OutboxEvent"]):
    """Queries over the outbox."""

    def due(self, now: datetime) -> OutboxEventQuerySet:
        """Return the pending events due at ``now`` that no worker holds, highest priority first,
        then oldest first: the order of the partial index ``outbox_due_idx``, which serves it (the
        cost does not grow with history)."""
        due = self.filter(status=Status.PENDING, scheduled_at__lte=now).not_held(now)
        return cast(OutboxEventQuerySet, due.order_by("-priority", "scheduled_at"))

    def claimable(self, now: datetime) -> OutboxEventQuerySet:
        """Return the due events a worker may take now, in the order of :meth:`due`.

        An event with a partition key is claimable only while no earlier event of its key, of any
        priority, is pending (held, or waiting for a retry): each key's events arrive in order.
        """
        earlier_of_key = self.model.objects.filter(
            Q(created_at__lt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), pk__lt=OuterRef("pk")),
            partition_key=OuterRef("partition_key"),
            status=Status.PENDING,
        )
        heads = self.due(now).filter(Q(partition_key__isnull=True) | ~Exists(earlier_of_key))
        return cast(OutboxEventQuerySet, heads)

    def in_flight(self, now: datetime) -> OutboxEventQuerySet:
        """Return the events a worker holds right now (claimed, lease not yet over)."""
        return cast(OutboxEventQuerySet, self.filter(status=Status.PENDING, leased_until__gt=now))

    def not_held(self, now: datetime) -> OutboxEventQuerySet:
        """Return these events but those a worker holds at ``now`` (a plain condition, so it
        also works in an UPDATE or DELETE)."""
        return cast(OutboxEventQuerySet, self.exclude(leased_until__gt=now))

    def retry_now(self) -> int:
        """Make these events due now, failed ones with their retries restored; return the count.

        Published and held events are left alone (``outbox_requeue``, the admin's "retry now").
        """
        now = timezone.now()
        waiting = self.filter(status__in=[Status.PENDING, Status.FAILED]).not_held(now)
        due_now = {"status": Status.PENDING, "retry_count": 0, "scheduled_at": now, **RELEASED}
        return int(waiting.update(**due_now))


class OutboxEvent(models.Model):
    """One event waiting in, or delivered from, the outbox; its CloudEvent ``id`` is ``str(id)``.

    ``backends`` lists the aliases the publisher chose (``None``: every configured backend).
    ``delivery`` maps each destination (backend alias or ``handler:`` name) to its
    :class:`DestinationEntry`; a retry redoes only those not ``delivered``. ``last_error`` says
    the latest errors in one line, for people and for grouping failures.
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
    priority = models.SmallIntegerField(default=0, help_text="Higher is claimed first when due.")
    published_at = models.DateTimeField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    max_retries = models.PositiveIntegerField(default=5)
    last_error = models.TextField(blank=True)

    backends = models.JSONField(null=True, blank=True)
    delivery = models.JSONField(
        default=dict, blank=True, help_text="Where the event stands with each destination."
    )
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    leased_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="A worker holds the event until then."
    )

    objects = OutboxEventQuerySet.as_manager()

    class Meta:
        db_table = "outbox_events"
        verbose_name = "outbox event"
        indexes = [
            models.Index(
                fields=["-priority", "scheduled_at"],
                name="outbox_due_idx",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["event_type", "created_at"], name="outbox_type_created_idx"),
            models.Index(
                fields=["partition_key", "created_at"],
                name="outbox_pending_key_idx",
                condition=Q(status="pending", partition_key__isnull=False),
            ),
            # For the admin's dashboard: the last hour's published rows; the failed rows.
            *(
                models.Index(fields=[column], name=f"outbox_{state}_idx", condition=Q(status=state))
                for column, state in [("published_at", "published"), ("scheduled_at", "failed")]
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

    @property
    def delivered(self) -> list[str]:
        """Return the destinations that accepted the event (0.2.0's column of that name)."""
        return delivered_to(self.delivery)


#: The column values of a row that no worker holds.
RELEASED: Final = {"lease_token": None, "leased_until": None}


#: The fields of an outbox row that make up its CloudEvent.
EVENT_FIELDS: Final = (
    "id", "event_type", "source", "subject", "data_content_type", "data_schema", "data",
    "extensions", "time",
)  # fmt: skip


def event_from_columns(
    columns: Mapping[str, Any], build: Callable[..., CloudEvent] = CloudEvent
) -> CloudEvent:
    """Return the CloudEvent of a row from its ``EVENT_FIELDS`` values, made by ``build``
    (``CloudEvent`` validates it, ``CloudEvent.trusted`` does not)."""
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


def delivered_to(delivery: Mapping[str, DestinationEntry] | None) -> list[str]:
    """Return the destinations that accepted the event, from its ``delivery``."""
    entries = (delivery or {}).items()
    return [name for name, entry in entries if entry.get("state") == DestinationState.DELIVERED]


def wants_backend(backends: Sequence[str] | None, alias: str) -> bool:
    """Return whether a row whose publisher chose ``backends`` (``None``: all) goes to ``alias``."""
    return backends is None or alias in backends
