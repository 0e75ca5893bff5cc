"""The outbox's data column writes the publisher's own encoding once, and only while it is true."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import router
from django.db.models.signals import ModelSignal, post_init, pre_save

from django_broadcaster import publishers as rows
from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent
from django_broadcaster.outbox.bulk import insert_rows
from django_broadcaster.outbox.models import keep_encoding
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


def test_the_kept_text_holds_however_often_django_prepares_the_insert() -> None:
    row = new_row({"a": 1})
    keep_encoding(row, KEPT)
    for field in OutboxEvent._meta.concrete_fields:  # Django 6.0 does this before the insert
        field.pre_save(row, True)
    row.save(force_insert=True)
    assert stored_data(row) == {"kept": True}


def test_a_bulk_insert_sends_the_kept_text() -> None:
    batch = [new_row({"a": 1}), new_row({"b": 2})]
    keep_encoding(batch[0], KEPT)
    insert_rows(batch, router.db_for_write(OutboxEvent))
    assert [stored_data(row) for row in batch] == [{"kept": True}, {"b": 2}]


@pytest.mark.parametrize("bulk", [False, True], ids=["publish_event", "publish_events"])
def test_publishing_inserts_the_text_it_encoded(
    bulk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rows, "encoded_copy", lambda data, max_size: (KEPT, dict(data)))
    if bulk:
        [row] = publisher.publish_events([CloudEvent("t", "s", {"a": 1})])
    else:
        row = publisher.publish_event("t", "s", {"a": 1})
    assert stored_data(row) == {"kept": True}


def test_replaced_data_is_encoded_instead() -> None:
    row = new_row({"a": 1})
    keep_encoding(row, KEPT)
    row.data = {"a": 1}  # equal, but another object: the text may no longer be true
    row.save(force_insert=True)
    assert stored_data(row) == {"a": 1}


def test_the_kept_text_serves_the_insert_only() -> None:
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


def test_each_row_holds_its_own_copy_of_the_data() -> None:
    def events_sharing_one_dict() -> Iterator[CloudEvent]:
        data = {"n": 0}
        for n in range(3):
            data["n"] = n
            yield CloudEvent("t", "s", data)

    published = publisher.publish_events(events_sharing_one_dict())
    assert [row.data for row in published] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [stored_data(row) for row in published] == [row.data for row in published]


@pytest.fixture(params=[(pre_save, OutboxEvent), (post_init, None)], ids=["pre_save", "post_init"])
def receiver_adding_a_key(request: pytest.FixtureRequest) -> Iterator[None]:
    signal: ModelSignal
    signal, sender = request.param

    def add_key(instance: OutboxEvent, **kwargs: Any) -> None:
        if isinstance(instance, OutboxEvent) and isinstance(instance.data, dict):
            instance.data["added"] = True

    signal.connect(add_key, sender=sender)
    yield
    signal.disconnect(add_key, sender=sender)


@pytest.mark.usefixtures("receiver_adding_a_key")
def test_data_a_receiver_changes_in_place_is_stored_as_changed() -> None:
    row = publisher.publish_event("order.created", "shop", {"order": 1})
    assert stored_data(row) == {"order": 1, "added": True}
