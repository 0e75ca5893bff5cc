"""The webhook backend's rules that need no server: answers, requests, options, checks."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.backends.webhook import WebhookBackend
from django_broadcaster.backends.webhook.addressing import MAX_POOLS, Pools
from django_broadcaster.backends.webhook.answers import classify, retry_after
from django_broadcaster.backends.webhook.messages import (
    BATCH_CONTENT_TYPE,
    batched_request,
    binary_request,
)
from django_broadcaster.checks import check_settings
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import BackendUnavailable, BroadcasterImproperlyConfigured
from django_broadcaster.retry import CircuitBreaker
from django_broadcaster.signatures import new_secret
from tests.settings import WEBHOOK_SECRET

CAP = timedelta(minutes=10)
NOW = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("status", "delivered", "unavailable"),
    [(200, True, False), (204, True, False), (409, True, False), (408, False, True),
     (429, False, True), (500, False, True), (503, False, True), (301, False, False),
     (400, False, False), (401, False, False), (404, False, False), (422, False, False)],
)  # fmt: skip
def test_each_status_means_what_the_docs_say(
    status: int, delivered: bool, unavailable: bool
) -> None:
    answer = classify(status, "", {}, b"", cap=CAP)
    assert (answer.delivered, answer.unavailable) == (delivered, unavailable)


def test_retry_after_reads_seconds_and_dates_and_is_capped() -> None:
    assert retry_after("7", NOW) == timedelta(seconds=7)
    assert retry_after("Mon, 07 Dec 2026 12:01:00 GMT", NOW) == timedelta(minutes=1)
    assert retry_after("soon", NOW) is None
    answer = classify(429, "Too Many", {"retry-after": "86400"}, b"", cap=CAP)
    assert answer.retry_after == CAP


def test_the_breaker_pauses_at_least_as_long_as_retry_after() -> None:
    breaker = CircuitBreaker("hook", timedelta(seconds=1), timedelta(seconds=30))
    error = BackendUnavailable("busy", retry_after=timedelta(minutes=2))
    assert breaker.record_failure(NOW, error) == NOW + timedelta(minutes=2)


def test_binary_mode_percent_encodes_header_values() -> None:
    event = CloudEvent("t", "/s", {"a": 1}, id="1", subject='café "x" 100%')
    request = binary_request(event)
    assert request.headers["ce-subject"] == "caf%C3%A9%20%22x%22%20100%25"
    assert request.headers["content-type"] == "application/json"
    assert request.body == b'{"a":1}' and request.message_id == "1"


def test_a_batch_is_a_json_array_under_a_stable_id() -> None:
    events = [CloudEvent("t", "/s", n, id=str(n)) for n in range(3)]
    request = batched_request(events)
    assert [item["id"] for item in json.loads(request.body)] == ["0", "1", "2"]
    assert request.headers["content-type"] == BATCH_CONTENT_TYPE
    assert (
        request.message_id
        == batched_request(events).message_id
        != batched_request(events[:2]).message_id
    )


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"url": "ftp://x/"}, "url must be"),
        ({"url": "http://u:p@x/"}, "credentials"),
        ({"secrets": "whsec_QUFB"}, "non-empty list"),
        ({"secrets": ["QUFB"]}, "does not start with"),
        ({"mode": "binnary"}, "mode must be"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"timeout": 2}, "timeout must be"),
        ({"pool_options": {"maxsize": 3}}, "pool_options"),
        ({"retries": 3}, "unknown option 'retries'"),
        ({"headers": {"Webhook-Id": "x"}}, "must not set 'Webhook-Id'"),
        ({"headers": {"Content-Type": "text/plain"}}, "must not set"),
        ({"headers": {"X-Attempt": 1}}, "names to strings"),
    ],
)
def test_bad_options_name_the_problem(options: dict[str, object], problem: str) -> None:
    config = {"url": "http://127.0.0.1:1/", "secrets": [WEBHOOK_SECRET], **options}
    with pytest.raises(BroadcasterImproperlyConfigured, match=problem):
        WebhookBackend("hook", **config)


def test_repr_and_errors_never_show_secrets_or_the_query() -> None:
    backend = WebhookBackend(
        "hook", url="http://127.0.0.1:1/in?token=t0psecret", secrets=[WEBHOOK_SECRET],
        headers={"Authorization": "Bearer s3cr3t-token"},
    )  # fmt: skip
    text = repr(backend) + str(backend._unavailable("Bearer s3cr3t-token at ?token=t0psecret"))
    assert "s3cr3t" not in text and "t0psecret" not in text and WEBHOOK_SECRET not in text


def hook(**options: object) -> dict[str, object]:
    return {
        "BACKEND": "django_broadcaster.backends.WebhookBackend",
        "OPTIONS": {"url": "http://127.0.0.1:1/", "secrets": [new_secret()], **options},
    }


def check_ids(**broadcaster: object) -> list[str]:
    with override_settings(BROADCASTER=broadcaster):
        return [message.id or "" for message in check_settings()]


def test_checks_report_webhook_settings() -> None:
    assert check_ids(BACKENDS={"h": hook()}) == []
    assert check_ids(BACKENDS={"h": hook(mode="x")}) == ["django_broadcaster.E003"]
    assert check_ids(BACKENDS={"h": hook(timeout=timedelta(seconds=2))}) == [
        "django_broadcaster.E031"
    ]
    assert check_ids(WEBHOOK_RECEIVER={"SECRETS": ["nope"]}) == ["django_broadcaster.E030"]
    assert check_ids(WEBHOOK_RECEIVER={"SECRETS": [new_secret()], "TOLERANCE": 300}) == [
        "django_broadcaster.E030"
    ]
    assert check_ids(WEBHOOK_RECEIVER={"SECRETS": [new_secret()], "MAX_ATTEMPTS": 0}) == [
        "django_broadcaster.E030"
    ]
    assert check_ids(WEBHOOK_RECEIVER={"SECRET": [new_secret()]}) == [
        "django_broadcaster.E030",
        "django_broadcaster.E030",
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://{ext_tenant}.example.com/in", "must be an http:// or https:// URL with a host"),
        ("https://hooks.example.com{type}", "must fix the scheme and the host"),
        ("https://hooks.example.com:{ext_port}/", "must fix the scheme and the host"),
        ("{ext_url}", "only the path and the query may have fields"),
        ("https://hooks.example.com/{id}", "names {id}"),
        ("https://hooks.example.com/in/{type}#x", "must not have a fragment"),
        ("https://hooks.example.com/a b/{type}", "holds a character a URL refuses"),
    ],
)
def test_a_url_template_that_could_change_the_host_is_refused(url: str, problem: str) -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match=re.escape(problem)):
        WebhookBackend("hook", url=url, secrets=[WEBHOOK_SECRET])
    assert check_ids(BACKENDS={"h": hook(url=url)}) == ["django_broadcaster.E003"]


def test_a_url_template_keeps_its_host_whatever_the_event_says() -> None:
    backend = WebhookBackend(
        "hook", url="https://hooks.example.com/in/{subject}?t={type}", secrets=[WEBHOOK_SECRET]
    )
    event = CloudEvent("x@evil.example", "/s", subject="//evil.example/../x?y=1")
    target = backend._addresses.target(event)
    assert target.origin == "https://hooks.example.com"
    assert target.path == "/in/%2F%2Fevil.example%2F..%2Fx%3Fy%3D1?t=x%40evil.example"
    assert backend.url == "https://hooks.example.com/in/{subject}?t={type}"  # as configured


def test_a_url_callable_may_choose_the_host_but_an_unusable_url_refuses_the_event() -> None:
    def url(event: CloudEvent) -> str:
        return f"https://{event.subject}/in" if event.subject else "ftp://nowhere/"

    backend = WebhookBackend("hook", url=url, secrets=[WEBHOOK_SECRET])
    good, bad = CloudEvent("t", "/s", subject="a.example", id="1"), CloudEvent("t", "/s", id="2")
    assert backend._addresses.target(good).origin == "https://a.example"
    rejected: dict[str, Any] = {}
    assert [r.events for _, r in backend._requests([good, bad], rejected)] == [(good,)]
    assert "no URL for this event: must be an http:// or https:// URL" in str(rejected["2"])


class _Pool:
    def __init__(self, origin: str) -> None:
        self.origin, self.closed = origin, False

    def close(self) -> None:
        self.closed = True


def test_pools_are_kept_per_origin_and_the_oldest_closed_past_the_limit() -> None:
    pools = Pools(_Pool)
    first = pools.get("https://a.example")
    assert pools.get("https://a.example") is first
    others = [pools.get(f"https://h{n}.example") for n in range(MAX_POOLS)]
    assert first.closed and not any(pool.closed for pool in others)
    pools.close()
    pools.close()  # safe twice
    assert all(pool.closed for pool in others)


def test_a_url_templates_literal_query_values_are_masked_not_its_field_names() -> None:
    backend = WebhookBackend(
        "hook", url="http://127.0.0.1:1/in/{type}?key=k3y-s3cret&tenant={ext_tenant}",
        secrets=[WEBHOOK_SECRET],
    )  # fmt: skip
    text = str(backend._unavailable("POST /in/x?key=k3y-s3cret&tenant=acme"))
    assert "k3y-s3cret" not in text and "tenant=acme" in text
    assert repr(backend).endswith("url='http://127.0.0.1:1/in/{type}?***' mode='binary'>")
