"""What an attempt tells of a row: whether only paused backends hold it, which ones are back."""

import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

from django_broadcaster.outbox.leases import ClaimedEvent
from django_broadcaster.outbox.outcomes import Outcome
from django_broadcaster.retry import HELD_PAUSES, held_until
from tests.factories import published_event

HANDLER = "handler:shop.handlers.notify"


def outcome(delivery: dict[str, Any] | None = None, delivered: tuple[str, ...] = ()) -> Outcome:
    row = ClaimedEvent(
        pk=uuid.uuid4(),
        lease_token=uuid.uuid4(),
        event=published_event(),
        backends=None,
        delivery=delivery or {},
        delivered=delivered,
        retry_count=0,
        max_retries=3,
        expires_at=None,
        scheduled_at=timezone.now(),
    )
    return Outcome(row, list(delivered))


def test_a_row_only_paused_backends_were_not_called_for_is_held() -> None:
    attempt = outcome()
    attempt.delivered.append("redis")
    attempt.defer(timezone.now(), "kafka", "backend paused", tried=False)
    assert attempt.held


def test_a_row_is_not_held_when_a_backend_was_tried_refused_or_a_handler_busy() -> None:
    tried, refused, busy = outcome(), outcome(), outcome()
    tried.defer(timezone.now(), "kafka", "unavailable: refused")
    refused.defer(timezone.now(), "kafka", "backend paused", tried=False)
    refused.errors["redis"] = "too large"
    busy.defer(timezone.now(), HANDLER, "handler busy", tried=False)
    assert not (tried.held or refused.held or busy.held)
    assert not outcome().held  # nothing unavailable: nothing to wait for


def test_a_destination_that_takes_an_event_it_was_unavailable_to_is_back() -> None:
    prior = {"kafka": {"state": "unavailable"}, "redis": {"state": "delivered"}}
    attempt = outcome(prior, delivered=("redis",))
    attempt.delivered.append("kafka")
    assert attempt.came_back == ["kafka"]
    fresh = outcome({"kafka": {"state": "pending"}})
    fresh.delivered.append("kafka")
    assert fresh.came_back == []


def test_a_held_row_comes_back_by_itself_after_some_longest_pauses() -> None:
    trial, cap = timezone.now(), timedelta(seconds=30)
    assert held_until(trial, cap) == trial + HELD_PAUSES * cap
