"""The async publishing methods write the same rows, on the caller's connection."""

from dataclasses import dataclass
from typing import ClassVar

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction

from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import InvalidEvent
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher


@dataclass
class Pinged:
    event_type: ClassVar[str] = "ping"
    source: ClassVar[str] = "tests"
    n: int


@pytest.mark.django_db
def test_apublish_event_writes_a_row() -> None:
    row = async_to_sync(publisher.apublish_event)(
        "order.created", "shop", {"order": 1}, subject="x"
    )
    stored = OutboxEvent.objects.get(pk=row.pk)
    assert (stored.event_type, stored.data, stored.subject) == ("order.created", {"order": 1}, "x")


@pytest.mark.django_db
def test_apublish_cloud_event_and_apublish_write_rows() -> None:
    async def publish_both() -> None:
        await publisher.apublish_cloud_event(CloudEvent("a", "shop"), max_retries=0)
        await publisher.apublish(Pinged(n=1))

    async_to_sync(publish_both)()
    assert sorted(OutboxEvent.objects.values_list("event_type", "max_retries")) == [
        ("a", 0),
        ("ping", 5),
    ]


@pytest.mark.django_db
def test_async_publishing_raises_where_it_is_awaited() -> None:
    with pytest.raises(InvalidEvent, match="URI-reference"):
        async_to_sync(publisher.apublish_event)("a", "not a uri")


@pytest.mark.django_db(transaction=True)
def test_a_sync_to_async_atomic_block_rolls_back_the_event_with_the_rest() -> None:
    @sync_to_async
    def place_order() -> None:
        with transaction.atomic():
            publisher.publish_event("order.created", "shop", {"order": 1})
            raise RuntimeError("the order could not be saved")

    with pytest.raises(RuntimeError):
        async_to_sync(place_order)()
    assert not OutboxEvent.objects.exists()
