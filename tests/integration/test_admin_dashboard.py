"""The admin's dashboard and the changelist's columns: content from rows in known states, the
permission, the link from each failure group to its events, and a fixed number of queries."""

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from django_broadcaster.admin.chart import chart
from django_broadcaster.admin.dashboard import Minute, duration
from django_broadcaster.events import format_timestamp
from django_broadcaster.models import OutboxEvent, Status
from tests.integration.test_admin import BACKENDS, CHANGELIST, client_for, event, listed, run_action

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("outbox_in_known_states")]

DASHBOARD = f"{CHANGELIST}dashboard/"
TOO_LARGE = "EventRejected: message too large; over 1 MB"


def entry(state: str, at: datetime, error: str = "") -> dict[str, Any]:
    return {"state": state, "attempts": 1, "at": format_timestamp(at), "error": error}


@pytest.fixture
def outbox_in_known_states() -> dict[str, Any]:
    """Rows in known states, with kafka and redis configured: kafka down a minute ago after a
    delivery ten minutes ago, redis delivering; two events kafka refused, one a handler did."""
    now = timezone.now()
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS}):
        rows = {
            "deferred": event(
                delivery={
                    "redis": entry("delivered", now - timedelta(minutes=1)),
                    "kafka": entry("unavailable", now - timedelta(minutes=1), "unavailable: down"),
                },
                last_error="kafka: unavailable: down",
                created_at=now - timedelta(minutes=3),
            ),
            "new": event(scheduled_at=now - timedelta(seconds=30)),
            "published": event(status=Status.PUBLISHED, published_at=now - timedelta(minutes=10)),
            "old": event(status=Status.PUBLISHED, published_at=now - timedelta(hours=2)),
            "too_large": [
                event(
                    status=Status.FAILED,
                    scheduled_at=now - timedelta(minutes=minutes),
                    delivery={"kafka": entry("rejected", now, TOO_LARGE)},
                    last_error=f"kafka: {TOO_LARGE}",
                )
                for minutes in (5, 6)
            ],
            "key_error": event(
                status=Status.FAILED,
                delivery={"handler:shop.ship": entry("rejected", now, "KeyError: 'order_id'")},
                last_error="handler:shop.ship: KeyError: 'order_id'",
            ),
        }
        yield rows


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def destinations(response: Any) -> dict[str, Any]:
    return {d.name: d for d in response.context["dashboard"].destinations}


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_each_destination_shows_its_backlog_wait_deferred_and_state(staff_client: Client) -> None:
    response = staff_client.get(DASHBOARD)
    assert response.status_code == 200
    kafka, redis = destinations(response)["kafka"], destinations(response)["redis"]
    assert (kafka.backlog, kafka.deferred, redis.backlog, redis.deferred) == (2, 1, 1, 0)
    assert 170 < kafka.oldest_wait.total_seconds() < 200  # the deferred event, created 3 min ago
    assert 25 < redis.oldest_wait.total_seconds() < 60  # the new one, due 30 s ago
    assert (kafka.failing, redis.failing) == (True, False)
    page = response.content.decode()
    assert '<tr data-destination="kafka">' in page
    assert "failing</span>\n            no delivery since" in page


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_failure_groups_link_to_their_events_which_can_be_retried(
    staff_client: Client, outbox_in_known_states: dict[str, Any]
) -> None:
    response = staff_client.get(DASHBOARD)
    failures = response.context["dashboard"].failures
    groups = [(g.kind.destination, g.kind.error_class, g.count) for g in failures]
    assert groups == [("kafka", "EventRejected", 2), ("handler:shop.ship", "KeyError", 1)]
    assert failures[1].kind.message == "<str>"
    page = response.content.decode()
    link = f"{CHANGELIST}?failure={failures[0].fingerprint}"
    assert f'<a href="{link}">EventRejected</a>' in page
    too_large = outbox_in_known_states["too_large"]
    listing = staff_client.get(link)
    assert listed(listing) == {str(row.pk) for row in too_large}
    assert failures[0].fingerprint in listing.content.decode()  # the filter shows it applies
    run_action(staff_client, "retry_now", *too_large)
    retried = OutboxEvent.objects.filter(pk__in=[row.pk for row in too_large])
    assert set(retried.values_list("status", flat=True)) == {Status.PENDING}


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_the_chart_counts_the_last_hours_published_and_failed_events(staff_client: Client) -> None:
    response = staff_client.get(DASHBOARD)
    minutes = response.context["dashboard"].minutes
    assert len(minutes) == 60
    assert (sum(m.published for m in minutes), sum(m.failed for m in minutes)) == (1, 3)
    page = response.content.decode()
    assert page.count('<rect class="published"') == 1
    assert page.count('<rect class="failed"') == 3  # 5 and 6 minutes ago, and now
    scripts = re.findall(r'<script[^>]*src="([^"]*)"', page)
    assert all(src.startswith("/static/admin/") for src in scripts)  # the admin's own, no CDN


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_the_dashboard_needs_the_view_permission() -> None:
    assert client_for().get(DASHBOARD).status_code == 403
    assert client_for("view").get(DASHBOARD).status_code == 200
    anonymous = Client().get(DASHBOARD)
    assert (anonymous.status_code, anonymous["Location"].startswith("/admin/login/")) == (302, True)


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_the_dashboard_runs_a_fixed_number_of_queries(
    staff_client: Client, django_assert_max_num_queries: Any
) -> None:
    staff_client.get(DASHBOARD)
    for _ in range(20):
        event(status=Status.FAILED, delivery={"redis": entry("rejected", timezone.now(), "X: y")})
    with django_assert_max_num_queries(12):
        assert staff_client.get(DASHBOARD).status_code == 200


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_the_changelist_links_the_dashboard_and_shows_compact_columns(
    staff_client: Client, outbox_in_known_states: dict[str, Any]
) -> None:
    page = staff_client.get(CHANGELIST).content.decode()
    assert f'<a href="{DASHBOARD}" class="viewlink">Dashboard</a>' in page
    row = outbox_in_known_states["deferred"]
    assert (
        f'<span class="broadcaster-id" title="{row.pk}">&hellip;{str(row.pk)[-8:]}</span>' in page
    )
    assert '<span class="broadcaster-status broadcaster-failed">failed</span>' in page
    assert (
        f'<span class="broadcaster-error" title="kafka: {TOO_LARGE}">kafka: EventRejected' in page
    )
    assert "django_broadcaster/admin.css" in page


def test_the_charts_scale_is_a_round_number_at_or_above_the_busiest_minute() -> None:
    start = timezone.now().replace(second=0, microsecond=0)
    minutes = [Minute(start + timedelta(minutes=n), n % 4, 0) for n in range(60)]
    drawn = chart(minutes)
    assert [tick.label for tick in drawn.counts] == ["0", "5"]
    tallest = max(drawn.published, key=lambda bar: bar.height)
    assert (tallest.height, tallest.y + tallest.height) == (148 * 3 / 5, drawn.baseline)
    assert [tick.label for tick in drawn.times] == [f"{m.start:%H:%M}" for m in minutes[::15]]


def test_waits_read_in_their_two_largest_units() -> None:
    spans = [timedelta(seconds=s) for s in (0, 45, 192, 7500, 273_600 + 59)]
    assert [duration(span) for span in spans] == [
        "0 s",
        "45 s",
        "3 min 12 s",
        "2 h 5 min",
        "3 d 4 h",
    ]


def test_the_dashboard_lists_the_routes_in_order(staff_client: Client) -> None:
    routes = [
        {"TYPES": "order.*", "BACKENDS": ["kafka"], "MAX_RETRIES": 9},
        {"TYPES": ["user.*", "cart.*"], "BACKENDS": ["kafka", "redis"]},
    ]
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS, "ROUTES": routes}):
        page = staff_client.get(DASHBOARD).content.decode()
    rows = re.findall(r'<tr data-route="(\d)">\s*(.*?)</tr>', page, flags=re.DOTALL)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for _, row in rows]
    assert cells == [
        ["1", "order.*", "kafka", "max_retries 9"],
        ["2", "user.*, cart.*", "kafka, redis", "&ndash;"],
    ]


def test_the_dashboard_says_when_there_are_no_routes(staff_client: Client) -> None:
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS}):
        page = staff_client.get(DASHBOARD).content.decode()
    assert "No routes: every event goes to every backend" in page
