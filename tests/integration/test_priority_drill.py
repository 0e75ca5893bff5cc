"""The priority drill: a burst of high-priority events overtakes a 50,000-event backlog.

PostgreSQL only: the backlog goes in by ``COPY`` in a few seconds and the worker overlaps its
claims with delivery there; SQLite's one writer and in-line claims would make the drain of the
backlog, not the burst, the test's length. The times are printed, not asserted (the machine is
shared); what is asserted is the bound the claim order guarantees whatever the machine's speed.
"""

from typing import Any

import pytest

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from harness.polling import poll
from harness.priority_burst import BURST_EVENTS, publish_burst
from tests.workers import start_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
]

BACKLOG, BATCH = 50_000, 500
#: Backlog events the worker may have in hand when the burst commits: the batch it delivers and
#: the one it has claimed ahead.
CLAIMED_BEFORE = 2 * BATCH


def test_a_high_priority_burst_goes_out_in_the_first_batch_claimed_after_it(
    redis_url: str, redis_client: Any, unique_name: str, record_property: Any
) -> None:
    for start in range(0, BACKLOG, 10_000):
        backlog = [
            CloudEvent("drill.bulk", "/drill", {"n": n}) for n in range(start, start + 10_000)
        ]
        publisher.publish_events(backlog, priority=-10)
    redis = {
        "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
        "OPTIONS": {"url": redis_url, "stream_name": unique_name, "max_len": None},
    }
    with start_worker("--batch-size", str(BATCH), backends={"redis": redis}) as worker:
        worker.wait_ready()
        poll(lambda: redis_client.xlen(unique_name) >= 4 * BATCH, 120, "the drain to be under way")
        burst = publish_burst(redis_client, unique_name, timeout_s=120)
    print(f"\n{burst.summary()}")
    record_property("burst_delivery_ms_median", burst.median_ms)
    record_property("burst_delivery_ms_max", burst.max_ms)

    assert len(burst.delivery_ms) == BURST_EVENTS
    # The burst's batch sends its own backlog events first (a batch goes out in publish order).
    assert burst.backlog_after_commit <= CLAIMED_BEFORE + (BATCH - BURST_EVENTS)
    pending = OutboxEvent.objects.filter(status="pending", event_type="drill.bulk").count()
    assert pending > BACKLOG // 2  # the burst did not wait for the backlog to drain
