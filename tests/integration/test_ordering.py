"""Events of one partition key reach a destination in publish order, across workers and retries."""

import json
import signal
from collections import defaultdict
from contextlib import ExitStack
from typing import Any

import pytest

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from harness.polling import poll
from tests.workers import start_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
]

KEYS, PER_KEY, WORKERS = 200, 100, 4


def test_four_workers_keep_each_keys_order_despite_random_failures(
    redis_url: str, redis_client: Any, unique_name: str
) -> None:
    publisher.publish_events(
        [
            CloudEvent("t", "s", {"key": key, "seq": seq}, extensions={"partitionkey": f"k{key}"})
            for seq in range(PER_KEY)
            for key in range(KEYS)
        ],
        max_retries=1000,
    )
    flaky = {
        "BACKEND": "tests.doubles.FlakyRedisBackend",
        "OPTIONS": {
            "url": redis_url,
            "stream_name": unique_name,
            "max_len": None,
            "failure_rate": 0.1,
        },
    }
    backends = {"flaky": flaky}
    fast_retries = {"RETRY_BASE_DELAY": 0.01, "RETRY_MAX_DELAY": 0.05, "POLL_INTERVAL": 0.01}
    with ExitStack() as running:
        workers = [
            running.enter_context(
                start_worker("--batch-size", "100", backends=backends, settings=fast_retries)
            )
            for _ in range(WORKERS)
        ]
        _wait_for_all_published(timeout=240)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait() for worker in workers]

    assert codes == [0] * WORKERS, [worker.tail() for worker in workers]
    arrived: dict[int, list[int]] = defaultdict(list)
    for _, fields in redis_client.xrange(unique_name):
        data = json.loads(fields[b"cloud_event"])["data"]
        arrived[data["key"]].append(data["seq"])
    assert len(arrived) == KEYS
    assert all(seqs == list(range(PER_KEY)) for seqs in arrived.values())
    assert OutboxEvent.objects.filter(retry_count__gt=0).count() > KEYS  # failures did happen


def _wait_for_all_published(timeout: float) -> None:
    total = KEYS * PER_KEY
    poll(
        lambda: OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == total,
        timeout,
        f"{total} events to be published",
    )
