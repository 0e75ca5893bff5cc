"""Dead letters and grouped replay together, on real Redis streams: a destination refuses one
type, its events go to the dead-letter stream, the destination is fixed, the admin replays the
group, and each event then reaches the destination that refused it, and nowhere else twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox.failures import failure_groups
from django_broadcaster.publishers import publisher
from django_broadcaster.testing import run_worker
from tests.integration.test_admin import CHANGELIST, client_for
from tests.integration.test_end_to_end import read_stream

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

EVENTS = 20


def redis_backend(url: str, stream: str, **extra: Any) -> dict[str, Any]:
    options = {"url": url, "stream_name": stream, "max_len": None}
    return {
        "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
        "OPTIONS": options,
        **extra,
    }


def stream_counts(client: Any, stream: str) -> Counter[str]:
    return Counter(event.get_id() for event in read_stream(client, stream))


def test_a_replayed_group_reaches_where_it_failed_and_no_stream_twice(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    orders, audit, dead = (f"{unique_name}.{name}" for name in ("orders", "audit", "dead"))
    redis_client.set(orders, "not a stream")  # XADD answers WRONGTYPE: a refusal, every time
    backends = {
        "orders": redis_backend(redis_url, orders, DEAD_LETTER="dead"),
        "audit": redis_backend(redis_url, audit),
        "dead": redis_backend(redis_url, dead),
    }
    rows = [
        publisher.publish_event("order.paid", "shop", {"order": n}, max_retries=0)
        for n in range(EVENTS)
    ]
    ids = dict.fromkeys((str(row.pk) for row in rows), 1)
    with override_settings(BROADCASTER={"BACKENDS": backends}):
        run_worker()
        assert OutboxEvent.objects.filter(status=Status.FAILED).count() == EVENTS
        assert stream_counts(redis_client, dead) == ids  # each dead-lettered once
        [group] = failure_groups()
        assert (group.kind.destination, group.kind.error_class, group.count) == (
            "orders",
            "EventRejected",
            EVENTS,
        )

        redis_client.delete(orders)  # the destination is fixed
        replayed = client_for("view", "change").post(
            f"{CHANGELIST}failures/{group.fingerprint}/replay/"
        )
        assert replayed.status_code == 302
        run_worker()

    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == EVENTS
    assert stream_counts(redis_client, orders) == ids  # where it failed: once each
    assert stream_counts(redis_client, audit) == ids  # delivered the first time, not again
    assert stream_counts(redis_client, dead) == ids  # no second dead letter
