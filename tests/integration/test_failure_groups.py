"""Failure groups in the admin: listed by fingerprint, replayed where they failed, discarded
after a confirmation, each only with its permission."""

from collections import Counter
from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.backends import LocMemBackend
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox.failures import failure_groups
from django_broadcaster.publishers import publisher
from django_broadcaster.testing import run_worker
from tests.doubles import FixableBackend
from tests.integration.test_admin import BACKENDS, CHANGELIST, client_for, event

pytestmark = pytest.mark.django_db

FAILURES = f"{CHANGELIST}failures/"


def refused(order: int, destination: str = "kafka", error: str = "") -> OutboxEvent:
    entry = {
        "state": "rejected",
        "attempts": 1,
        "at": "2026-12-07T10:00:00Z",
        "error": error or f"EventRejected: order {order} missing",
    }
    return event(status=Status.FAILED, delivery={destination: entry})


@pytest.fixture
def one_group() -> list[OutboxEvent]:
    """Three events kafka refused for a missing order, and one it refused for another reason."""
    refused(9, error="ValueError: bad data")
    return [refused(order) for order in (1, 22, 333)]


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_the_page_lists_each_group_with_its_count_and_an_example(
    one_group: list[OutboxEvent],
) -> None:
    response = client_for("view").get(FAILURES)
    assert response.status_code == 200
    groups = response.context["groups"]
    assert [(g.kind.error_class, g.kind.message, g.count) for g in groups] == [
        ("EventRejected", "order <n> missing", 3),
        ("ValueError", "bad data", 1),
    ]
    page = response.content.decode()
    assert f'data-fingerprint="{groups[0].fingerprint}"' in page
    assert f"{CHANGELIST}{groups[0].example.key}/change/" in page
    assert "Replay this group" not in page and "Discard this group" not in page  # view only


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_replay_and_discard_need_their_permissions(one_group: list[OutboxEvent]) -> None:
    fingerprint = failure_groups()[0].fingerprint
    viewer = client_for("view")
    assert viewer.post(f"{FAILURES}{fingerprint}/replay/").status_code == 403
    assert viewer.get(f"{FAILURES}{fingerprint}/discard/").status_code == 403
    assert viewer.post(f"{FAILURES}{fingerprint}/discard/").status_code == 403
    assert client_for("view", "delete").post(f"{FAILURES}{fingerprint}/replay/").status_code == 403
    assert client_for("view", "change").get(f"{FAILURES}{fingerprint}/discard/").status_code == 403
    assert OutboxEvent.objects.filter(status=Status.FAILED).count() == 4


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_replay_requeues_the_group_and_nothing_else(one_group: list[OutboxEvent]) -> None:
    fingerprint = failure_groups()[0].fingerprint
    client = client_for("view", "change")
    assert client.get(f"{FAILURES}{fingerprint}/replay/").status_code == 405  # a POST only
    response = client.post(f"{FAILURES}{fingerprint}/replay/", follow=True)
    assert "3 failed events will be sent again" in response.content.decode()
    assert set(OutboxEvent.objects.filter(status=Status.PENDING)) == set(one_group)
    assert OutboxEvent.objects.filter(status=Status.FAILED).count() == 1
    assert client.post(f"{FAILURES}not-a-group/replay/").status_code == 404


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_discard_asks_first_with_the_count_then_deletes_the_group(
    one_group: list[OutboxEvent],
) -> None:
    fingerprint = failure_groups()[0].fingerprint
    client = client_for("view", "delete")
    asking = client.get(f"{FAILURES}{fingerprint}/discard/")
    assert asking.status_code == 200
    assert '<strong id="broadcaster-discard-count">3</strong>' in asking.content.decode()
    assert OutboxEvent.objects.count() == 4  # asking changed nothing
    done = client.post(f"{FAILURES}{fingerprint}/discard/", follow=True)
    assert "Discarded 3 failed outbox events" in done.content.decode()
    assert not OutboxEvent.objects.filter(pk__in=[row.pk for row in one_group]).exists()
    assert OutboxEvent.objects.count() == 1


def test_a_replay_after_the_fix_delivers_each_event_where_it_failed_only() -> None:
    stream, broken = LocMemBackend("stream"), FixableBackend("broken")
    backends: dict[str, Any] = {"stream": stream, "broken": broken}
    rows = [
        publisher.publish_event("order.paid", "shop", {"order": n}, max_retries=0) for n in range(5)
    ]
    with override_settings(
        BROADCASTER={
            "BACKENDS": {
                alias: {"BACKEND": "django_broadcaster.backends.LocMemBackend"}
                for alias in backends
            }
        }
    ):
        run_worker(backends=backends)
        assert OutboxEvent.objects.filter(status=Status.FAILED).count() == 5
        [group] = failure_groups()
        assert (group.kind.destination, group.kind.message, group.count) == (
            "broken",
            "order <n> missing",
            5,
        )
        broken.refusing = False  # the destination is fixed
        client_for("view", "change").post(f"{FAILURES}{group.fingerprint}/replay/")
        run_worker(backends=backends)
    assert OutboxEvent.objects.filter(status=Status.PUBLISHED).count() == 5
    ids = {str(row.id) for row in rows}
    assert Counter(str(e.id) for e in stream.events) == dict.fromkeys(ids, 1)
    assert Counter(broken.accepted) == dict.fromkeys(ids, 1)
