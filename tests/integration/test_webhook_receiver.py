"""The receiving view refuses what it cannot trust, runs nothing then, and answers as documented.

Requests are signed here with the standardwebhooks reference library and posted with Django's
test client; the handlers are a fresh registry's, counting their calls.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.test import RequestFactory
from standardwebhooks import Webhook

from django_broadcaster.backends.webhook.messages import (
    batched_request,
    binary_request,
    structured_request,
)
from django_broadcaster.consumers.inbox import InboxEntry
from django_broadcaster.events import CloudEvent
from django_broadcaster.receivers import FailedAttempts, WebhookReceiver
from django_broadcaster.registry import EventRegistry
from tests.settings import WEBHOOK_OLD_SECRET, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)

REGISTRY = EventRegistry()
CALLS: list[str] = []


@REGISTRY.register("tests.receiver.order")
def _count(event: CloudEvent) -> None:
    if isinstance(event.data, dict) and event.data.get("fail"):
        raise RuntimeError("handler bug")
    CALLS.append(str(event.id))


#: The view under test, built afresh for each test (its own count of failed attempts).
VIEW: Any = None


@pytest.fixture(autouse=True)
def _view() -> None:
    # Called directly, not through the test client, whose responses resolve their URL lazily
    # and would fail to once another test's URLconf is in place.
    global VIEW
    VIEW = WebhookReceiver.as_view(registry=REGISTRY, attempts=FailedAttempts())
    CALLS.clear()


def call(method: str, body: bytes = b"", content_type: str = "", **extra: str) -> Any:
    request = getattr(RequestFactory(), method)("/in/", body, content_type=content_type, **extra)
    response = VIEW(request)
    response.json_body = json.loads(response.content)
    return response


def event(number: int = 1, **data: Any) -> CloudEvent:
    return CloudEvent(
        "tests.receiver.order", "/shop", {"n": number, **data}, id=f"order-{number}",
        time=datetime(2026, 12, 7, tzinfo=timezone.utc),
    )  # fmt: skip


def post(
    body: bytes,
    headers: dict[str, str],
    message_id: str,
    *,
    at: datetime | None = None,
    secret: str = WEBHOOK_SECRET,
    signed_body: bytes | None = None,
) -> Any:
    """Post ``body`` signed as ``message_id`` at ``at`` (now) over ``signed_body`` (the body)."""
    at = at or datetime.now(timezone.utc)
    signature = Webhook(secret).sign(message_id, at, signed_body or body)
    signed = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    extra = {
        f"HTTP_{name.upper().replace('-', '_')}": v for name, v in {**headers, **signed}.items()
    }
    content_type = extra.pop("HTTP_CONTENT_TYPE", "application/octet-stream")
    return call("post", body, content_type, **extra)


def counts(**nonzero: int) -> dict[str, int]:
    return {"processed": 0, "duplicates": 0, "ignored": 0, "dead_lettered": 0, **nonzero}


def send(request: Any, **options: Any) -> Any:
    return post(request.body, request.headers, request.message_id, **options)


@pytest.mark.parametrize("build", [binary_request, structured_request])
def test_a_signed_event_is_handled_once_then_a_replay_is_409(build: Any) -> None:
    request = build(event())
    first = send(request)
    assert (first.status_code, first.json_body) == (200, counts(processed=1))
    again = send(request)
    assert again.status_code == 409
    assert CALLS == ["order-1"]


def test_a_batch_runs_its_new_events_and_skips_the_old() -> None:
    send(binary_request(event(1)))
    response = send(batched_request([event(1), event(2), event(3)]))
    assert response.json_body == counts(processed=2, duplicates=1)
    assert CALLS == ["order-1", "order-2", "order-3"]


def test_the_old_secret_still_verifies() -> None:
    assert send(binary_request(event()), secret=WEBHOOK_OLD_SECRET).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"secret": "whsec_" + "QUFB" * 8}, id="wrong-signature"),
        pytest.param({"at": -timedelta(minutes=6)}, id="expired"),
        pytest.param({"at": timedelta(minutes=6)}, id="from-future"),
        pytest.param({"signed_body": b'{"n":2}'}, id="body-changed-after-signing"),
    ],
)
def test_an_untrustworthy_request_is_401_and_runs_nothing(tamper: dict[str, Any]) -> None:
    if "at" in tamper:  # an offset from now, when the test runs rather than when collected
        tamper = {"at": datetime.now(timezone.utc) + tamper["at"]}
    response = send(binary_request(event()), **tamper)
    assert response.status_code == 401
    assert CALLS == [] and not InboxEntry.objects.exists()


def test_a_missing_signature_is_401() -> None:
    request = binary_request(event())
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in request.headers.items()}
    response = call("post", request.body, "application/json", **extra)
    assert response.status_code == 401 and CALLS == []


def test_headers_changed_to_another_event_id_are_400() -> None:
    request = binary_request(event())
    response = post(request.body, {**request.headers, "ce-id": "order-9"}, request.message_id)
    assert response.status_code == 400 and CALLS == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/cloudevents+json"),
        (b'{"specversion": "1.0", "id": "x"}', "application/cloudevents+json"),
        (b'{"a": 1}', "application/cloudevents-batch+json"),
        (b"{}", "application/json"),  # binary mode without any ce- header
    ],
)
def test_a_malformed_event_is_400_and_runs_nothing(body: bytes, content_type: str) -> None:
    response = post(body, {"content-type": content_type}, "x")
    assert response.status_code == 400
    assert CALLS == [] and not InboxEntry.objects.exists()


def test_a_failing_handler_is_500_and_rolls_the_whole_request_back() -> None:
    response = send(batched_request([event(1), event(2, fail=True)]))
    assert response.status_code == 500
    assert not InboxEntry.objects.exists()
    assert json.loads(response.content) == {"error": "a handler failed: RuntimeError"}


def test_only_post_is_allowed() -> None:
    assert VIEW(RequestFactory().get("/in/")).status_code == 405


def test_an_event_no_handler_wants_is_ignored() -> None:
    other = CloudEvent("tests.receiver.other", "/shop", id="other-1")
    assert send(binary_request(other)).json_body == counts(ignored=1)
    assert not InboxEntry.objects.exists()


def test_an_event_failing_max_attempts_times_becomes_a_dead_letter(settings: Any) -> None:
    settings.BROADCASTER = {**settings.BROADCASTER, "WEBHOOK_RECEIVER": {
        **settings.BROADCASTER["WEBHOOK_RECEIVER"], "MAX_ATTEMPTS": 3,
    }}  # fmt: skip
    request = batched_request([event(1, fail=True), event(2)])
    assert [send(request).status_code for _ in range(2)] == [500, 500]
    third = send(request)
    assert (third.status_code, third.json_body) == (200, counts(processed=1, dead_lettered=1))
    [dead] = InboxEntry.objects.failed()
    assert (dead.event_id, dead.error) == ("order-1", "RuntimeError: handler bug")
    assert send(request).status_code == 409  # the dead letter makes a re-send a duplicate
    assert CALLS == ["order-2"]
