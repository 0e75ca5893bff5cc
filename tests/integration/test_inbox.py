"""The inbox: each event handled once; failures leave no trace; duplicates break nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from django_broadcaster.consumers import inbox
from django_broadcaster.consumers.inbox import InboxEntry, InboxStatus
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import InvalidEvent
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from tests.factories import published_event


def side_effect(event: CloudEvent) -> None:
    publisher.publish_event("handled", "tests", {"event": event.id})


def side_effects() -> int:
    return OutboxEvent.objects.filter(event_type="handled").count()


@pytest.mark.django_db
def test_an_event_is_handled_once_and_its_duplicate_skipped() -> None:
    event = published_event()
    assert inbox.process_once(event, side_effect) is True
    assert inbox.process_once(event, side_effect) is False
    assert side_effects() == 1
    entry = InboxEntry.objects.get()
    assert (entry.source, entry.event_id, entry.event_type) == (
        event.source,
        event.id,
        event.event_type,
    )
    assert entry.status == InboxStatus.PROCESSED


@pytest.mark.django_db
def test_the_same_id_from_another_source_is_another_event() -> None:
    event = published_event()
    other = published_event(id=event.id, source="https://other.example.com")
    assert inbox.process_once(event, side_effect)
    assert inbox.process_once(other, side_effect)
    assert side_effects() == 2


@pytest.mark.django_db
def test_a_failing_handler_leaves_no_entry_so_the_event_can_be_retried() -> None:
    event = published_event()

    def fail(event: CloudEvent) -> None:
        side_effect(event)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        inbox.process_once(event, fail)
    assert not InboxEntry.objects.exists()
    assert side_effects() == 0
    assert inbox.process_once(event, side_effect)
    assert side_effects() == 1


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_inside_an_outer_transaction_leaves_it_usable() -> None:
    event = published_event()
    inbox.process_once(event, side_effect)
    with transaction.atomic():
        with inbox.receive(event) as fresh:
            assert fresh is False
        side_effect(published_event())  # PostgreSQL would refuse this after an unhandled error
    assert side_effects() == 2
    assert InboxEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_entry_commits_only_with_the_outer_transaction() -> None:
    event = published_event()
    with pytest.raises(RuntimeError), transaction.atomic():
        assert inbox.process_once(event, side_effect)
        raise RuntimeError("the caller's work failed")
    assert not InboxEntry.objects.exists()
    assert inbox.process_once(event, side_effect)


@pytest.mark.django_db
def test_an_event_without_an_id_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="no id"):
        inbox.process_once(CloudEvent("t", "s"), side_effect)


@pytest.mark.django_db
def test_a_dead_letter_keeps_the_event_out() -> None:
    event = published_event()
    assert inbox.keep_dead_letter(
        source=event.source, event_id=str(event.id), error="E: x", payload="{}"
    )
    assert not inbox.keep_dead_letter(source=event.source, event_id=str(event.id))
    assert inbox.process_once(event, side_effect) is False
    assert list(InboxEntry.objects.failed().values_list("error", flat=True)) == ["E: x"]


def long_event(**overrides: str) -> CloudEvent:
    """Return an event whose id, source and type are all 300 characters long."""
    keys = {"id": "i" * 300, "source": "urn:" + "s" * 296, "event_type": "t" * 300}
    return published_event(**{**keys, **overrides})


@pytest.mark.django_db
def test_over_long_keys_are_stored_in_a_form_that_fits_and_duplicates_are_still_spotted() -> None:
    event = long_event()
    assert inbox.process_once(event, side_effect) is True
    assert inbox.process_once(long_event(), side_effect) is False
    assert inbox.process_once(long_event(id="i" * 299 + "j"), side_effect) is True
    assert side_effects() == 2
    entry = InboxEntry.objects.of(event).get()
    assert max(len(entry.source), len(entry.event_id), len(entry.event_type)) <= 255
    assert entry.event_id.startswith("iii") and entry.event_type.startswith("ttt")
    assert inbox.keep_dead_letter(source=event.source, event_id="e" * 300, event_type="t" * 300)


@pytest.mark.django_db
def test_a_dead_letter_keeps_text_the_database_cannot_store_as_escapes() -> None:
    assert inbox.keep_dead_letter(
        source="s", event_id="1", error="ValueError: \ud800 and \x00", payload='"\udfff"'
    )
    letter = InboxEntry.objects.get()
    assert (letter.error, letter.payload) == ("ValueError: \\ud800 and \\x00", '"\\udfff"')


@pytest.mark.django_db
def test_purge_deletes_old_processed_entries_only() -> None:
    old, recent, failed = published_event(), published_event(), published_event()
    for event in (old, recent):
        inbox.process_once(event, side_effect)
    inbox.keep_dead_letter(source=failed.source, event_id=str(failed.id))
    InboxEntry.objects.exclude(event_id=recent.id).update(
        received_at=timezone.now() - timedelta(days=8)
    )
    assert InboxEntry.objects.purge(older_than=timedelta(days=7)) == 1
    assert set(InboxEntry.objects.values_list("event_id", flat=True)) == {recent.id, failed.id}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_waits_for_the_first_commit_then_is_skipped() -> None:
    event = published_event()
    first_inserted, let_first_commit = threading.Event(), threading.Event()
    results: dict[str, bool] = {}

    def first() -> None:
        def hold(event: CloudEvent) -> None:
            first_inserted.set()
            let_first_commit.wait(10)

        results["first"] = inbox.process_once(event, hold)
        connection.close()

    def second() -> None:
        results["second"] = inbox.process_once(event, side_effect)
        connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_inserted.wait(10)
    threads[1].start()
    threads[1].join(0.5)
    assert threads[1].is_alive(), "the second insert should wait for the first transaction"
    let_first_commit.set()
    for thread in threads:
        thread.join(10)
    assert results == {"first": True, "second": False}
    assert side_effects() == 0
