"""A handler's failure, whatever it raises, fails its event: logged, retried, never fatal."""

from __future__ import annotations

import asyncio
import logging

import pytest

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.testing import run_worker

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "raised",
    [SystemExit(0), SystemExit(3), asyncio.CancelledError("cancelled"), GeneratorExit()],
    ids=["SystemExit(0)", "SystemExit(3)", "CancelledError", "GeneratorExit"],
)
def test_a_handler_raising_a_base_exception_fails_its_event_not_the_worker(
    raised: BaseException,
) -> None:
    # 0.2.0 let these out of the worker: SystemExit(0) exited 0 with no log line, the batch stayed
    # leased, and every restart sent it to the backends again and never reached the events after.
    registry = EventRegistry()

    @registry.register("bad")
    def on_bad(event: CloudEvent) -> None:
        raise raised

    first = publisher.publish_event("bad", "s")
    second = publisher.publish_event("good", "s")
    stats = run_worker(backends={}, registry=registry)

    assert (stats.retried, stats.published) == (1, 1)
    first.refresh_from_db()
    assert (first.status, first.retry_count) == (Status.PENDING, 1)
    [entry] = first.delivery.values()
    assert entry["state"] == "rejected" and entry["error"].startswith(type(raised).__name__)
    assert OutboxEvent.objects.get(pk=second.pk).status == Status.PUBLISHED


def test_a_failing_handler_is_logged_with_its_type_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = EventRegistry()

    @registry.register("order.created")
    def on_order(event: CloudEvent) -> None:
        print(event.data["order_id"])

    retried = publisher.publish_event("order.created", "s", {}, max_retries=3)
    last_chance = publisher.publish_event("order.created", "s", {}, max_retries=0)
    with caplog.at_level(logging.WARNING, logger="django_broadcaster"):
        run_worker(backends={}, registry=registry)

    records = {record.getMessage().split(" on ")[1][:36]: record for record in caplog.records}
    warning, error = records[str(retried.id)], records[str(last_chance.id)]
    assert warning.levelno == logging.WARNING and error.levelno == logging.ERROR
    assert "KeyError: 'order_id'" in warning.getMessage()
    assert "no retry left" in error.getMessage()
    for record in (warning, error):
        assert record.exc_info is not None and record.exc_info[0] is KeyError  # the traceback
