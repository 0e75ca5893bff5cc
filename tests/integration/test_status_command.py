"""``manage.py outbox_status`` prints the status as text or JSON and checks the lag."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.test import override_settings
from django.utils import timezone

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.outbox.failures import failure_groups
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.testing import run_worker

pytestmark = pytest.mark.django_db


def status(*args: str) -> str:
    out = StringIO()
    call_command("outbox_status", *args, stdout=out)
    return out.getvalue()


def due_for(seconds: int) -> None:
    row = publisher.publish_event("order", "shop")
    OutboxEvent.objects.filter(pk=row.pk).update(
        scheduled_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_text_output_has_counts_lag_destinations_waiting_and_failures() -> None:
    due_for(60)
    row = publisher.publish_event("order", "shop")
    OutboxEvent.objects.filter(pk=row.pk).update(
        status=Status.FAILED, last_error="default: EventRejected: too big"
    )
    waiting = publisher.publish_event("order", "shop")
    OutboxEvent.objects.filter(pk=waiting.pk).update(
        scheduled_at=timezone.now() + timedelta(minutes=1),
        last_error="default: unavailable: authentication failed: SASL refused",
    )
    output = status()
    assert "  pending            2  (1 due, 0 in flight)" in output
    assert "  failed             1" in output
    assert "Lag: 60." in output
    assert re.search(r"^  backend  default +2 +1 +60\.\d s$", output, re.MULTILINE)
    assert (
        "Why pending events wait (by last error):\n"
        "        1  default: unavailable: authentication failed: SASL refused\n"
    ) in output
    assert "        1  default: EventRejected: too big" in output


def test_an_empty_outbox_says_so() -> None:
    output = status()
    assert "Lag: none (no event is waiting)" in output
    assert "Waiting: none." in output
    assert "Failures: none." in output


def test_json_output() -> None:
    due_for(5)
    values = json.loads(status("--json"))
    assert values["counts"]["pending"] == 1
    assert values["lag_seconds"] >= 5
    assert values["destinations"][0]["name"] == "default"


def test_max_lag_fails_when_the_oldest_due_event_waited_longer() -> None:
    due_for(120)
    with pytest.raises(CommandError, match=r"Lag 120\.\d s is over --max-lag 60 s"):
        status("--max-lag", "60")


OUTAGE = {
    "BACKENDS": {
        "kafka": {"BACKEND": "tests.doubles.UnavailableBackend"},
        "redis": {"BACKEND": "django_broadcaster.backends.LocMemBackend"},
    },
    "BREAKER_BASE_DELAY": timedelta(minutes=1),
}


@override_settings(BROADCASTER=OUTAGE)
def test_an_event_deferred_by_an_outage_is_lag_and_fails_max_lag() -> None:
    row = publisher.publish_event("order", "shop")
    assert run_worker(registry=EventRegistry()).deferred == 1  # Kafka is down
    outage = F("created_at") - timedelta(seconds=35)  # for 35 s
    OutboxEvent.objects.filter(pk=row.pk).update(created_at=outage)

    output = status()
    assert "  pending            1  (0 due, 0 in flight)" in output
    assert "Lag: 35." in output
    assert re.search(r"^  backend  kafka +1 +0 +35\.\d s$", output, re.MULTILINE)
    assert re.search(r"^  backend  redis +0 +0 +-$", output, re.MULTILINE)
    values = json.loads(status("--json"))
    assert values["lag_seconds"] >= 35
    lags = {d["name"]: d["lag_seconds"] for d in values["destinations"]}  # other tests add handlers
    assert (lags["kafka"], lags["redis"]) == (pytest.approx(35, abs=5), None)
    with pytest.raises(CommandError, match=r"Lag 35\.\d s is over --max-lag 10 s \(kafka 35\."):
        status("--max-lag", "10")


def test_max_lag_passes_when_within_or_nothing_is_due() -> None:
    status("--max-lag", "0")
    due_for(10)
    status("--max-lag", "3600")


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--top", "-1"], "must not be negative"), (["--max-lag", "-5"], "0 or more")],
)
def test_negative_limits_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        status(*args)


ROUTED = {
    "BACKENDS": {
        "default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"},
        "audit": {"BACKEND": "django_broadcaster.backends.LocMemBackend"},
    },
    "ROUTES": [
        {"TYPES": ["order.*", "cart.*"], "BACKENDS": ["default"], "MAX_RETRIES": 9},
        {"TYPES": "audit.*", "BACKENDS": ["audit", "default"], "PRIORITY": -10},
    ],
}


@override_settings(BROADCASTER=ROUTED)
def test_the_routes_are_listed_in_order_as_text_and_json() -> None:
    output = status()
    assert "Routes (the first that matches an event decides" in output
    assert "    1. order.*, cart.* -> default  (max_retries 9)" in output
    assert "    2. audit.* -> audit, default  (priority -10)" in output
    routes = json.loads(status("--json"))["routes"]
    assert [(r["rule"], r["backends"]) for r in routes] == [
        (1, ["default"]),
        (2, ["audit", "default"]),
    ]


def test_without_routes_the_section_is_left_out() -> None:
    assert "Routes" not in status()


def test_failures_lists_each_group_with_its_fingerprint_as_text_or_json() -> None:
    assert status("--failures") == "No event has failed.\n"
    for order in (12, 345):
        row = publisher.publish_event("order", "shop")
        entry = {"state": "rejected", "at": "2026-12-07T10:00:00Z"}
        OutboxEvent.objects.filter(pk=row.pk).update(
            status=Status.FAILED,
            delivery={"redis": {**entry, "error": f"EventRejected: order {order} missing"}},
        )
    [group] = failure_groups()
    text = status("--failures")
    assert f"  {group.fingerprint}        2  2026-12-07 10:00:00  redis  " in text
    assert text.rstrip().endswith("EventRejected: order <n> missing")
    [listed] = json.loads(status("--failures", "--json"))
    assert listed["fingerprint"] == group.fingerprint
    assert (listed["count"], listed["message"], listed["first_seen"]) == (
        2,
        "order <n> missing",
        "2026-12-07T10:00:00+00:00",
    )
