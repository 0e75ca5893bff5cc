"""Dead letters: an event that fails at a destination goes on to that destination's
``DEAD_LETTER`` (or its route's), as itself with the failure attached, and the row says so."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from django_broadcaster.backends import LocMemBackend
from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.signals import event_failed
from django_broadcaster.testing import run_worker
from tests.doubles import RejectingBackend, UnavailableBackend
from tests.integration.test_webhook_example import shop

pytestmark = pytest.mark.django_db

LOCMEM = "django_broadcaster.backends.LocMemBackend"


def settings(**extra: Any) -> dict[str, Any]:
    backends = {
        "main": {"BACKEND": LOCMEM, "DEAD_LETTER": "dead"},
        "dead": {"BACKEND": LOCMEM},
        "other": {"BACKEND": LOCMEM},
    }
    return {"BACKENDS": backends, "RETRY_BASE_DELAY": timedelta(hours=1), **extra}


@pytest.fixture
def configured() -> Iterator[None]:
    with override_settings(BROADCASTER=settings()):
        yield


def backends(**replaced: Any) -> dict[str, Any]:
    built = {alias: LocMemBackend(alias) for alias in ("main", "dead", "other")}
    return {**built, "main": RejectingBackend("main"), **replaced}


def test_a_refused_event_goes_to_the_dead_letter_with_the_failure(configured: None) -> None:
    doubles = backends()
    row = publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=1)
    publisher.publish_event("order.paid", "/shop", {"reject": False})
    run_worker(backends=doubles, registry=EventRegistry())  # refused once: retried in an hour
    OutboxEvent.objects.filter(pk=row.pk).update(scheduled_at=timezone.now())

    stats = run_worker(backends=doubles, registry=EventRegistry())

    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert (stats.failed, stats.dead_lettered, stats.published) == (1, 1, 0)
    assert row.delivery["main"]["dead_letter"] == "dead"
    assert row.delivery["main"]["attempts"] == 2
    assert row.delivery["dead-letter:main"]["state"] == "delivered"
    assert row.last_error.startswith("main: EventRejected: too large for this broker")
    [letter] = doubles["dead"].events
    assert (letter.id, letter.event_type, letter.data) == (
        str(row.pk),
        "order.paid",
        {"reject": True},
    )
    assert letter.extensions["deadletterreason"] == "retriesexhausted"
    assert letter.extensions["deadletterdest"] == "main"
    assert letter.extensions["deadletterattempts"] == 2
    assert letter.extensions["deadlettererror"] == "EventRejected: too large for this broker"
    # published to every backend, the other event went everywhere but to the dead letters
    assert [len(doubles[a].events) for a in ("other", "dead")] == [2, 1]


def test_no_retry_allowed_makes_the_reason_rejected(configured: None) -> None:
    doubles = backends()
    publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)
    run_worker(backends=doubles, registry=EventRegistry())
    [letter] = doubles["dead"].events
    assert letter.extensions["deadletterreason"] == "rejected"


def test_a_dead_letter_destination_that_is_down_defers_it_and_spends_nothing(
    configured: None,
) -> None:
    down = UnavailableBackend("dead")
    row = publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)

    stats = run_worker(backends=backends(dead=down), registry=EventRegistry())

    row.refresh_from_db()
    assert (row.status, row.retry_count, stats.deferred) == (Status.PENDING, 1, 1)
    assert row.delivery["dead-letter:main"]["state"] == "unavailable"
    assert row.scheduled_at > timezone.now()
    down.down = False
    OutboxEvent.objects.filter(pk=row.pk).update(scheduled_at=timezone.now())
    stats = run_worker(backends=backends(dead=down), registry=EventRegistry())

    row.refresh_from_db()
    assert (row.status, row.retry_count, stats.dead_lettered) == (Status.FAILED, 1, 1)
    assert row.delivery["dead-letter:main"] == {**row.delivery["dead-letter:main"], "attempts": 2}
    assert down.calls == [str(row.pk), str(row.pk)]
    assert row.delivery["main"]["state"] == "rejected"  # never tried again meanwhile


def test_a_refused_dead_letter_ends_the_row_failed_without_a_loop(configured: None) -> None:
    refusing = RejectingBackend("dead")
    row = publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)

    stats = run_worker(backends=backends(dead=refusing), registry=EventRegistry())

    row.refresh_from_db()
    assert row.status == Status.FAILED and stats.failed == 2 and stats.dead_lettered == 0
    assert refusing.calls == [str(row.pk)]
    assert row.delivery["dead-letter:main"]["state"] == "rejected"
    assert "dead-letter:main: EventRejected" in row.last_error


def test_event_failed_is_sent_once_the_dead_letter_is_there(configured: None) -> None:
    doubles = backends()
    seen: list[int] = []

    def on_failed(event: CloudEvent, **kwargs: Any) -> None:
        seen.append(len(doubles["dead"].events))

    event_failed.connect(on_failed, dispatch_uid="dead-letter-test")
    try:
        publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)
        run_worker(backends=doubles, registry=EventRegistry())
    finally:
        event_failed.disconnect(dispatch_uid="dead-letter-test")
    assert seen == [1]


def test_a_routes_dead_letter_wins_and_takes_handler_failures() -> None:
    rules = [{"TYPES": "order.*", "BACKENDS": ["main"], "DEAD_LETTER": "other"}]
    registry = EventRegistry()

    @registry.register("order.paid")
    def on_paid(event: CloudEvent) -> None:
        raise KeyError("sku")

    doubles = backends()
    with override_settings(BROADCASTER=settings(ROUTES=rules)):
        row = publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)
        run_worker(backends=doubles, registry=registry)

    row.refresh_from_db()
    handler = next(name for name in row.delivery if name.startswith("handler:"))
    assert row.delivery["main"]["dead_letter"] == row.delivery[handler]["dead_letter"] == "other"
    dests = sorted(letter.extensions["deadletterdest"] for letter in doubles["other"].events)
    assert dests == sorted(["main", handler])
    assert doubles["dead"].events == []


def test_requeued_after_its_dead_letter_the_event_goes_where_it_failed(configured: None) -> None:
    doubles = backends()
    row = publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)
    run_worker(backends=doubles, registry=EventRegistry())
    assert OutboxEvent.objects.filter(pk=row.pk).retry_now() == 1

    fixed = backends(main=LocMemBackend("main"))
    run_worker(backends=fixed, registry=EventRegistry())

    row.refresh_from_db()
    assert row.status == Status.PUBLISHED
    assert [len(fixed[a].events) for a in ("main", "dead", "other")] == [1, 0, 0]


def test_an_expired_event_is_still_dead_lettered(configured: None) -> None:
    doubles = backends(dead=UnavailableBackend("dead"))
    row = publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)
    run_worker(backends=doubles, registry=EventRegistry())
    OutboxEvent.objects.filter(pk=row.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1), scheduled_at=timezone.now()
    )
    doubles["dead"].down = False
    run_worker(backends=doubles, registry=EventRegistry())
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert row.delivery["dead-letter:main"]["state"] == "delivered"


def test_status_shows_the_dead_letters_and_no_backlog_for_the_dead_letter_backend(
    configured: None,
) -> None:
    doubles = backends(dead=RejectingBackend("dead"))
    publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)
    run_worker(backends=doubles, registry=EventRegistry())  # the dead letter is refused too
    publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)
    run_worker(backends=backends(), registry=EventRegistry())
    publisher.publish_event("order.paid", "/shop", {"reject": False})  # pending, not for "dead"

    out = StringIO()
    call_command("outbox_status", stdout=out)
    text = out.getvalue()
    assert re.search(r"main -> dead +1 +0 +1\n", text), text
    values = json.loads(status_json())
    assert values["dead_letters"] == [
        {"destination": "main", "dead_letter": "dead", "to_send": 0, "sent": 1, "refused": 1}
    ]
    pending = {d["name"]: d["pending"] for d in values["destinations"] if d["kind"] == "backend"}
    assert pending == {"main": 1, "dead": 0, "other": 1}


def status_json() -> str:
    out = StringIO()
    call_command("outbox_status", "--json", stdout=out)
    return out.getvalue()


def test_the_admin_page_shows_where_the_event_was_dead_lettered(configured: None) -> None:
    row = publisher.publish_event("order.paid", "/shop", {"reject": True}, max_retries=0)
    run_worker(backends=backends(), registry=EventRegistry())
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))

    page = client.get(f"/admin/django_broadcaster/outboxevent/{row.pk}/change/").content.decode()

    assert "<th>dead letter to</th>" in page
    assert "<td>main</td><td>rejected</td><td>1</td>" in page
    assert "</td><td>dead</td></tr>" in page
    assert "<td>dead-letter:main</td><td>delivered</td><td>1</td>" in page


def test_the_example_shop_sends_refused_orders_to_its_dead_letters() -> None:
    script = (
        "from django.utils.module_loading import import_string as i; "
        "from django_broadcaster.events import CloudEvent; "
        "config = i('django_broadcaster.conf.get_settings')(); "
        "event = CloudEvent(event_type='order.created', source='/shop'); "
        "print(i('django_broadcaster.dead_letters.dead_letter_for')(event, 'redis', config))"
    )
    run = shop("shell", "-c", script, SHOP_BROADCASTER="redis,kafka")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "dead_letters"
    check = shop("check", "--fail-level", "WARNING", SHOP_BROADCASTER="redis,kafka")
    assert check.returncode == 0, check.stderr


def test_a_row_requeued_with_its_retries_spent_fails_at_once(configured: None) -> None:
    doubles = backends()
    row = publisher.publish_event("order.paid", "/shop", {"reject": False}, max_retries=0)
    OutboxEvent.objects.filter(pk=row.pk).update(retry_count=1)  # not as retry_now() does

    stats = run_worker(backends=doubles, registry=EventRegistry())

    row.refresh_from_db()
    assert (row.status, stats.failed, stats.dead_lettered) == (Status.FAILED, 1, 0)
    assert [doubles[alias].events for alias in ("other", "dead")] == [[], []]
