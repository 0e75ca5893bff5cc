"""Drill 6: bad input at publish time fails at the call site and writes nothing.

``tests/unit/test_events.py`` (invalid names, naive times, NaN, size) and
``tests/integration/test_publisher.py`` cover one event at a time through ``publish_event``. What
they leave out is covered here: the bulk path, where one bad event among good ones must write
none of them, and the length limits of the type and source columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import InvalidEvent, UnknownBackend
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

LOCMEM = {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}


def good(n: int) -> CloudEvent:
    return CloudEvent("order.created", "order-service", {"n": n})


@pytest.mark.parametrize(
    ("bad", "kwargs", "error", "message"),
    [
        (CloudEvent("t", "s", {"x": float("nan")}), {}, InvalidEvent, "NaN"),
        (CloudEvent("t", "s", {"x": float("-inf")}), {}, InvalidEvent, "NaN or Infinity"),
        (CloudEvent("t", "s", {"blob": "x" * 70_000}), {}, InvalidEvent, "over the limit"),
        (CloudEvent("t", "s", {"when": datetime(2030, 1, 1)}), {}, InvalidEvent, "JSON"),
        (CloudEvent("t", "s", id="order-1"), {}, InvalidEvent, "must be a UUID"),
        (CloudEvent("t" * 256, "s"), {}, InvalidEvent, "event_type is 256 characters"),
        (CloudEvent("t", "s" * 256), {}, InvalidEvent, "source is 256 characters"),
        (good(0), {"backends": ["nope"]}, UnknownBackend, "Unknown backend alias 'nope'"),
        (good(0), {"scheduled_at": datetime(2030, 1, 1)}, InvalidEvent, "timezone-aware"),
        (good(0), {"max_retries": True}, InvalidEvent, "max_retries"),
    ],
    ids=[
        "nan",
        "infinity",
        "oversize",
        "naive-datetime-in-data",
        "id-not-uuid",
        "type-too-long",
        "source-too-long",
        "unknown-alias",
        "naive-scheduled-at",
        "bool-max-retries",
    ],
)
@override_settings(BROADCASTER={"BACKENDS": LOCMEM})
def test_one_bad_event_in_a_bulk_publish_writes_none(
    bad: CloudEvent, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    events = [good(1), good(2), bad, good(3)]
    with pytest.raises(error, match=message):
        publisher.publish_events(events, **kwargs)
    assert not OutboxEvent.objects.exists()
