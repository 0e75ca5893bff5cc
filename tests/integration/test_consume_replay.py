"""Replaying the inbox's dead letters: grouped by fingerprint, each handled once when replayed
with handlers that work now, kept failed with one more attempt when they fail again; and the
``consume_replay`` command that chooses and confirms."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_broadcaster.consumers.inbox import InboxEntry, InboxStatus, keep_dead_letter
from django_broadcaster.consumers.processing import Disposition, Message, Processor
from django_broadcaster.consumers.replay import Replayed, dead_letter_groups, replay
from django_broadcaster.events import CloudEvent
from django_broadcaster.formats import to_structured_json
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry, event_registry
from django_broadcaster.retry import RetryPolicy

# The consumer closes connections it finds unusable, as one inside a test's transaction looks.
pytestmark = pytest.mark.django_db(transaction=True)

ORDER = "shop.order.paid"
HANDLED = "test.handled"

#: The handlers before the fix: every order fails, naming it.
BROKEN = EventRegistry()
#: The handlers after the fix: each order handled writes one row, in the inbox's transaction.
FIXED = EventRegistry()


@BROKEN.register(ORDER)
def fail(event: CloudEvent) -> None:
    raise LookupError(f"order {event.data['order']} not found")


@FIXED.register(ORDER)
def record(event: CloudEvent) -> None:
    publisher.publish_event(HANDLED, "tests", {"event": event.id})


def order(number: int) -> CloudEvent:
    return CloudEvent(event_type=ORDER, source="shop", id=str(uuid.uuid4()), data={"order": number})


def dead_letter(event: CloudEvent, attempts: int = 2) -> InboxEntry:
    """Make ``event`` a dead letter the way a consumer does: its handlers fail every attempt."""
    policy = RetryPolicy(max_attempts=attempts, base_delay=timedelta(0), max_delay=timedelta(0))
    processor = Processor(BROKEN, policy, threading.Event())
    message = Message(origin="redis:orders", position="1-0", handle=None, event=event)
    assert processor.process(message) == Disposition.DEAD_LETTERED
    return InboxEntry.objects.of(event).get()


def handled(event: CloudEvent) -> int:
    return OutboxEvent.objects.filter(event_type=HANDLED, data__event=event.id).count()


def run(*argv: str) -> str:
    out = StringIO()
    call_command("consume_replay", *argv, stdout=out)
    return out.getvalue()


def test_a_dead_letter_records_its_attempts() -> None:
    entry = dead_letter(order(1), attempts=3)
    assert (entry.status, entry.attempts) == (InboxStatus.FAILED, 3)
    assert entry.error == "LookupError: order 1 not found"


def test_dead_letters_group_by_type_class_and_message_without_values() -> None:
    for number in (1, 22, 333):
        dead_letter(order(number))
    keep_dead_letter(source="kafka:orders", event_id="0:7", error="UndecodableMessage: not JSON")
    groups = dead_letter_groups()
    assert [(g.kind.destination, g.kind.error_class, g.kind.message, g.count) for g in groups] == [
        (ORDER, "LookupError", "order <n> not found", 3),
        ("kafka:orders", "UndecodableMessage", "not JSON", 1),
    ]


def test_a_replay_with_working_handlers_handles_each_dead_letter_once() -> None:
    event = order(1)
    entry = dead_letter(event)
    assert replay(entry, FIXED) == Replayed.PROCESSED
    entry.refresh_from_db()
    assert (entry.status, entry.error, entry.replayed_at is not None) == ("processed", "", True)
    assert replay(entry, FIXED) == Replayed.GONE  # a second replay finds nothing to do
    assert handled(event) == 1


def test_a_replay_that_fails_again_keeps_the_dead_letter_with_one_more_attempt() -> None:
    event = order(5)
    entry = dead_letter(event, attempts=2)
    assert replay(entry, BROKEN) == Replayed.FAILED
    entry.refresh_from_db()
    assert (entry.status, entry.attempts) == (InboxStatus.FAILED, 3)
    assert entry.error == "LookupError: order 5 not found"
    assert entry.replayed_at is not None and entry.payload  # kept, to replay again


def test_a_message_kept_under_its_position_is_recorded_under_its_own_key_when_replayed() -> None:
    event = order(8)
    fields = {"cloud_event": to_structured_json(event).decode()}
    keep_dead_letter(source="redis:orders", event_id="7-0", payload=json.dumps(fields))
    entry = InboxEntry.objects.get(source="redis:orders")
    assert replay(entry, FIXED) == Replayed.PROCESSED
    assert InboxEntry.objects.of(event).get().status == InboxStatus.PROCESSED
    assert handled(event) == 1
    keep_dead_letter(source="redis:orders", event_id="9-0", payload=json.dumps(fields))
    again = InboxEntry.objects.get(event_id="9-0")
    assert replay(again, FIXED) == Replayed.PROCESSED  # a redelivery: handled already
    assert handled(event) == 1


def test_the_command_counts_asks_for_yes_and_replays_once() -> None:
    events = [order(number) for number in (1, 2)]
    for event in events:
        dead_letter(event)
    fixed = ["--registry", f"{__name__}.FIXED"]
    assert run("--dry-run", *fixed) == "2 dead letters match.\n"
    with pytest.raises(CommandError, match="pass --yes to act on these 2 dead letters"):
        run(*fixed)
    assert InboxEntry.objects.failed().count() == 2
    fingerprint = dead_letter_groups()[0].fingerprint
    assert run("--group", fingerprint, "--yes", *fixed) == (
        "2 dead letters match.\n2 processed, 0 failed, 0 gone.\n"
    )
    assert [handled(event) for event in events] == [1, 1]
    assert run("--yes", *fixed) == "0 dead letters match.\n"


def test_the_command_narrows_by_type_and_time() -> None:
    dead_letter(order(1))
    keep_dead_letter(source="kafka:orders", event_id="0:7", error="UndecodableMessage: not JSON")
    assert run("--type", ORDER, "--dry-run") == "1 dead letters match.\n"
    InboxEntry.objects.filter(event_type=ORDER).update(
        received_at=timezone.now() - timedelta(days=2)
    )
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    assert run("--since", yesterday, "--dry-run") == "1 dead letters match.\n"
    assert run("--until", yesterday, "--dry-run") == "1 dead letters match.\n"


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--group", "nope"], "not a failure group's fingerprint"),
        (["--since", "soon"], "must be an ISO 8601 date"),
        (["--since", "2026-12-08", "--until", "2026-12-07"], "must be before --until"),
        (["--yes", "--dry-run"], "not allowed with argument"),
        (["--registry", "no.such.registry"], "cannot import"),
    ],
)
def test_the_command_refuses_bad_arguments(argv: list[str], problem: str) -> None:
    with pytest.raises(CommandError, match=problem):
        run(*argv)


def test_the_command_refuses_handlers_left_on_event_registry(global_handlers: Any) -> None:
    dead_letter(order(1))
    global_handlers(event_registry, ORDER, lambda event: None)
    assert run("--dry-run") == "1 dead letters match.\n"  # counting needs no handler
    with pytest.raises(CommandError, match="No consumer handlers"):
        run("--yes")
    assert InboxEntry.objects.failed().count() == 1
