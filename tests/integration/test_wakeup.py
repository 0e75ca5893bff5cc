"""LISTEN/NOTIFY on PostgreSQL: commits wake the idle worker, long before its poll interval."""

import logging
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction

from django_broadcaster.events import CloudEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.worker.wakeup import Wakeup
from harness.polling import poll
from tests.workers import start_worker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHANNEL = OutboxEvent._meta.db_table
LOCMEM = {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}
#: The worker's poll interval: it would wake up on its own only after this long.
POLL_S = 60.0
#: How long a test waits for what a notification should bring: far below POLL_S.
PROMPT_S = 15.0


@pytest.fixture
def listening() -> Iterator[psycopg.Connection]:
    """Yield a connection that listens on the outbox's channel."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        yield listener


def payloads_until_end(listener: psycopg.Connection) -> list[str]:
    """Send an ``end`` notification and return the payloads that arrive before and with it.

    Notifications arrive in commit order, so everything committed earlier comes before ``end``.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {CHANNEL}, 'end'")
    payloads: list[str] = []
    for notify in listener.notifies(timeout=PROMPT_S):
        payloads.append(notify.payload)
        if notify.payload == "end":
            return payloads
    raise AssertionError(f"the end notification never came; got {payloads}")


def test_a_committed_bulk_publish_notifies_once(listening: psycopg.Connection) -> None:
    with transaction.atomic():
        publisher.publish_events([CloudEvent("t", "s", {"n": n}) for n in range(20)])
        publisher.publish_event("t", "s", {"n": 20})
    assert payloads_until_end(listening) == ["", "end"]


def test_a_rolled_back_publish_notifies_nobody(listening: psycopg.Connection) -> None:
    with transaction.atomic():
        publisher.publish_event("t", "s", {"n": 1})
        transaction.set_rollback(True)
    assert payloads_until_end(listening) == ["end"]


def test_the_wakeup_reconnects_after_losing_its_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wakeup = Wakeup(True, timedelta(0), timedelta(0))
    try:
        assert wakeup.wait(POLL_S) is True  # starting to listen: events may have been missed
        assert wakeup.listener is not None
        with connection.cursor() as cursor:
            pid = wakeup.listener.connection.pgconn.backend_pid
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with caplog.at_level(logging.WARNING, logger="django_broadcaster.worker.wakeup"):
            for _ in range(3):  # the error message may come before the end of the stream
                assert wakeup.wait(POLL_S) is True
                if wakeup.listener is None:
                    break
        assert wakeup.listener is None
        assert "The LISTEN connection was lost" in caplog.text
        assert wakeup.wait(POLL_S) is True
        assert wakeup.listener is not None
        publisher.publish_event("t", "s", {"n": 1})
        assert wakeup.wait(POLL_S) is True
    finally:
        wakeup.close()


def test_an_idle_worker_delivers_new_events_long_before_its_poll_interval() -> None:
    with start_worker("--interval", str(POLL_S), backends=LOCMEM) as worker:
        worker.wait_for_line("Listening for new events", timeout=30)
        for n in range(3):
            with transaction.atomic():
                row = publisher.publish_event("t", "s", {"n": n})
            published = OutboxEvent.objects.filter(pk=row.pk, status=Status.PUBLISHED)
            poll(published.exists, PROMPT_S, f"event {n} delivered")
        # An idle wait ends at once on SIGTERM.
        assert worker.stop(timeout=PROMPT_S) == 0, worker.output()
