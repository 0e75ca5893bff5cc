"""Events published in a view reach receivers in other processes over signed webhooks, once.

The receivers are real servers on loopback: the project's receiving view under gunicorn, and a
receiver written only with the cloudevents SDK and the standardwebhooks reference library.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from django_broadcaster.backends.webhook import WebhookBackend
from django_broadcaster.consumers.inbox import InboxEntry
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.testing import run_worker
from harness.polling import poll
from harness.process import Process
from tests.settings import WEBHOOK_OLD_SECRET, WEBHOOK_SECRET
from tests.webhooks.servers import (
    free_port,
    handled_ids,
    sdk_received,
    start_sdk_receiver,
    start_view_receiver,
)

pytestmark = pytest.mark.django_db(transaction=True)

MODES = ["binary", "structured", "batched"]


@pytest.fixture
def view_receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Yield the URL of the project's view served by gunicorn, and its file of handled ids."""
    port, handled = free_port(), tmp_path / "handled.txt"
    with start_view_receiver(port, handled) as process:
        yield f"http://127.0.0.1:{port}/webhooks/", handled
        process.stop()  # gracefully: a killed master leaves its workers holding the output


@pytest.fixture
def sdk_receiver() -> Iterator[tuple[str, Process]]:
    """Yield the URL of the SDK-only receiver and its process."""
    port = free_port()
    with start_sdk_receiver(port) as process:
        yield f"http://127.0.0.1:{port}/", process


def place_orders(count: int) -> list[str]:
    """Publish ``count`` orders through the shop's view; return their event ids."""
    items = [{"n": n, "note": "crème brûlée"} for n in range(count)]
    response = Client().post("/orders/", json.dumps(items), content_type="application/json")
    assert response.status_code == 200
    return list(response.json()["ids"])


def deliver(url: str, mode: str, secrets: list[str] | None = None) -> None:
    backend = WebhookBackend("hook", url=url, secrets=secrets or [WEBHOOK_SECRET], mode=mode)
    stats = run_worker(backends={"hook": backend})
    assert stats.published == OutboxEvent.objects.count(), stats


@pytest.mark.parametrize("mode", MODES)
def test_the_view_receiver_handles_each_event_once(
    view_receiver: tuple[str, Path], mode: str
) -> None:
    url, handled = view_receiver
    ids = place_orders(7)
    deliver(url, mode)
    assert sorted(handled_ids(handled)) == sorted(ids)
    assert InboxEntry.objects.filter(event_id__in=ids).count() == 7
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {Status.PUBLISHED}


@pytest.mark.parametrize("mode", MODES)
def test_the_sdk_receiver_verifies_and_reads_every_event(
    sdk_receiver: tuple[str, Process], mode: str
) -> None:
    url, process = sdk_receiver
    ids = place_orders(5)
    deliver(url, mode)
    poll(lambda: len(sdk_received(process)) == 5, 10, "five events received", detail=process.tail)
    lines = sdk_received(process)
    assert sorted(line.split()[1] for line in lines) == sorted(ids)
    assert all(" tests.webhook.order " in line and "crème brûlée" in line for line in lines)


def test_a_rotated_secret_still_verifies_while_both_are_sent(
    view_receiver: tuple[str, Path],
) -> None:
    url, handled = view_receiver
    ids = place_orders(2)
    new = "whsec_bmV3LXRlc3RzLW9ubHktd2ViaG9vay1zZWNyZXQtMzJi"  # not known to the receiver
    deliver(url, "binary", secrets=[new, WEBHOOK_OLD_SECRET])
    assert sorted(handled_ids(handled)) == sorted(ids)


def test_a_delivered_batch_sent_again_is_a_duplicate_and_counts_as_delivered(
    view_receiver: tuple[str, Path],
) -> None:
    url, handled = view_receiver
    ids = place_orders(3)
    deliver(url, "batched")
    OutboxEvent.objects.update(status=Status.PENDING)  # as after a lost answer
    deliver(url, "batched")
    assert sorted(handled_ids(handled)) == sorted(ids)


@pytest.mark.parametrize("mode", MODES)
def test_a_url_template_sends_each_type_to_its_own_path(
    sdk_receiver: tuple[str, Process], mode: str
) -> None:
    url, process = sdk_receiver
    types = ["order.created", "invoice.sent", "user.signed_up"]
    ids = {
        str(publisher.publish_event(t, "/shop", {"n": n}, subject="a/b c").id): t
        for n in range(2)
        for t in types
    }
    deliver(url + "in/{type}?subject={subject}", mode)
    poll(lambda: len(process.lines(r"^at ")) == 6, 10, "six events received", detail=process.tail)
    paths = {line.split()[2]: line.split()[1] for line in process.lines(r"^at ")}
    assert paths == {i: f"/in/{t}?subject=a%2Fb%20c" for i, t in ids.items()}
    requests = len(process.lines(r"^request "))
    assert requests == (3 if mode == "batched" else 6)  # batched: one request per URL
