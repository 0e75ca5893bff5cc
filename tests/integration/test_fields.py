"""The outbox's data column writes the publisher's own encoding once, and only while it is true."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import router
from django.db.models.signals import pre_save

from django_broadcaster.bulk import insert_rows
from django_broadcaster.fields import keep_encoding
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher

pytestmark = pytest.mark.django_db(transaction=True)

#: Text that is not the encoding of the row's data: which of the two is stored shows which was sent.
KEPT = '{"kept":true}'


def stored_data(row: OutboxEvent) -> Any:
    return OutboxEvent.objects.values_list("data", flat=True).get(pk=row.pk)


def new_row(data: Any) -> OutboxEvent:
    return OutboxEvent(event_type="t", source="s", data=data)


def test_an_insert_sends_the_kept_text() -> None:
    row = new_row({"a": 1})
    keep_encoding(row, KEPT)
    row.save(force_insert=True)
    assert stored_data(row) == {"kept": True}


def test_a_bulk_insert_sends_the_kept_text() -> None:
    rows = [new_row({"a": 1}), new_row({"b": 2})]
    keep_encoding(rows[0], KEPT)
    insert_rows(rows, router.db_for_write(OutboxEvent))
    assert [stored_data(row) for row in rows] == [{"kept": True}, {"b": 2}]


def test_replaced_data_is_encoded_instead() -> None:
    row = new_row({"a": 1})
    keep_encoding(row, KEPT)
    row.data = {"a": 1}  # equal, but another object: the text may no longer be true
    row.save(force_insert=True)
    assert stored_data(row) == {"a": 1}


def test_the_kept_text_serves_one_write_only() -> None:
    row = new_row({"a": 1})
    keep_encoding(row, KEPT)
    row.save(force_insert=True)
    row.data["a"] = 2
    row.save()
    assert stored_data(row) == {"a": 2}


def test_no_data_is_stored_as_sql_null() -> None:
    row = new_row(None)
    keep_encoding(row, "null")
    row.save(force_insert=True)
    assert OutboxEvent.objects.filter(pk=row.pk, data__isnull=True).exists()


@pytest.fixture
def receiver_adding_a_key() -> Iterator[None]:
    def add_key(sender: type[OutboxEvent], instance: OutboxEvent, **kwargs: Any) -> None:
        instance.data["added"] = True

    pre_save.connect(add_key, sender=OutboxEvent)
    yield
    pre_save.disconnect(add_key, sender=OutboxEvent)


@pytest.mark.usefixtures("receiver_adding_a_key")
def test_data_a_pre_save_receiver_changes_in_place_is_stored_as_changed() -> None:
    row = publisher.publish_event("order.created", "shop", {"order": 1})
    assert stored_data(row) == {"order": 1, "added": True}
