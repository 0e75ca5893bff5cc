"""The admin: find and inspect events, retry or discard them, only with the permission."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django.utils import timezone

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from tests.factories import delivered_to, named_backends

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/django_broadcaster/outboxevent/"
TOO_LARGE = {
    "state": "rejected",
    "attempts": 2,
    "error": "EventRejected: message too large; over 1 MB",
    "at": "2026-12-07T10:00:00Z",
}
BACKENDS = {
    alias: {"BACKEND": "django_broadcaster.backends.LocMemBackend"} for alias in ("kafka", "redis")
}


def client_for(*permissions: str, model: str = "outboxevent") -> Client:
    """Return a client logged in as a staff user with ``permissions`` on ``model``."""
    user = User.objects.create_user(f"u-{uuid.uuid4().hex[:8]}", is_staff=True)
    codenames = [f"{name}_{model}" for name in permissions]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def event(event_type: str = "order.created", **fields: Any) -> OutboxEvent:
    row = publisher.publish_event(event_type, "shop", {"order": 7})
    OutboxEvent.objects.filter(pk=row.pk).update(**fields)
    return OutboxEvent.objects.get(pk=row.pk)


def run_action(client: Client, action: str, *rows: OutboxEvent) -> Any:
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(row.pk) for row in rows]}
    return client.post(CHANGELIST, data, follow=True)


def listed(response: Any) -> set[str]:
    return {str(row.pk) for row in response.context["cl"].result_list}


def test_changelist_and_change_page_render(staff_client: Client) -> None:
    row = event()
    listing = staff_client.get(f"{CHANGELIST}?status__exact=pending")
    assert listing.status_code == 200
    assert str(row.id) in listing.content.decode()
    detail = staff_client.get(f"{CHANGELIST}{row.pk}/change/")
    assert detail.status_code == 200
    assert "&quot;order&quot;: 7" in detail.content.decode()


def test_search_by_id_or_by_type(staff_client: Client) -> None:
    created, shipped = event("order.created"), event("order.shipped")
    assert listed(staff_client.get(f"{CHANGELIST}?q={created.pk}")) == {str(created.pk)}
    assert listed(staff_client.get(f"{CHANGELIST}?q=shipped")) == {str(shipped.pk)}
    assert listed(staff_client.get(f"{CHANGELIST}?q={uuid.uuid4()}")) == set()


def test_filters_by_status_type_source_and_date(staff_client: Client) -> None:
    failed = event("order.shipped", status=Status.FAILED)
    old = event(created_at=timezone.now() - timedelta(days=800))
    assert listed(staff_client.get(f"{CHANGELIST}?status__exact=failed")) == {str(failed.pk)}
    assert listed(staff_client.get(f"{CHANGELIST}?event_type=order.shipped")) == {str(failed.pk)}
    assert len(listed(staff_client.get(f"{CHANGELIST}?source=shop"))) == 2
    year = old.created_at.year
    assert listed(staff_client.get(f"{CHANGELIST}?created_at__year={year}")) == {str(old.pk)}


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_destination_filters_use_the_configured_backends(staff_client: Client) -> None:
    everywhere = event(delivery=delivered_to("kafka"))
    redis_only = event(**named_backends("redis"))
    page = staff_client.get(CHANGELIST)
    assert "?destination=kafka" in page.content.decode()
    assert "?not_delivered_to=redis" in page.content.decode()
    assert listed(staff_client.get(f"{CHANGELIST}?destination=kafka")) == {str(everywhere.pk)}
    assert listed(staff_client.get(f"{CHANGELIST}?destination=redis")) == {
        str(everywhere.pk),
        str(redis_only.pk),
    }
    assert listed(staff_client.get(f"{CHANGELIST}?not_delivered_to=kafka")) == set()
    assert len(listed(staff_client.get(f"{CHANGELIST}?destination=gone"))) == 2


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_change_page_shows_each_destination_and_its_last_error(staff_client: Client) -> None:
    row = event(
        status=Status.FAILED,
        delivery={**delivered_to("redis"), "kafka": TOO_LARGE},
        last_error="kafka: EventRejected: message too large; over 1 MB",
    )
    page = staff_client.get(f"{CHANGELIST}{row.pk}/change/").content.decode()
    assert "<tr><td>kafka</td><td>rejected</td><td>2</td><td>2026-12-07T10:00:00+00:00</td>" in page
    assert "<td>EventRejected: message too large; over 1 MB</td><td></td></tr>" in page
    assert "<tr><td>redis</td><td>delivered</td><td>1</td><td></td><td></td><td></td></tr>" in page


def test_the_changelist_runs_a_fixed_number_of_queries(
    staff_client: Client, django_assert_max_num_queries: Any
) -> None:
    for n in range(50):
        event(
            f"type-{n % 5}",
            status=[Status.PENDING, Status.FAILED][n % 2],
            delivery=delivered_to("x"),
        )
    staff_client.get(CHANGELIST)  # warm the session and the content types
    with django_assert_max_num_queries(8):
        response = staff_client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 50


def test_retry_now_requeues_failed_and_waiting_events(staff_client: Client) -> None:
    failed = event(status=Status.FAILED, retry_count=6)
    published = event(status=Status.PUBLISHED)
    response = run_action(staff_client, "retry_now", failed, published)
    assert "1 of 2 selected events will be retried now; published and in-flight events were" in (
        response.content.decode()
    )
    failed.refresh_from_db()
    assert (failed.status, failed.retry_count) == (Status.PENDING, 0)
    assert OutboxEvent.objects.get(pk=published.pk).status == Status.PUBLISHED


def test_discard_deletes_unpublished_events_but_not_in_flight_ones(staff_client: Client) -> None:
    failed = event(status=Status.FAILED)
    waiting = event()
    published = event(status=Status.PUBLISHED)
    in_flight = event(lease_token=uuid.uuid4(), leased_until=timezone.now() + timedelta(minutes=1))
    response = run_action(staff_client, "discard", failed, waiting, published, in_flight)
    assert "Discarded 2 of 4 selected events; published and in-flight events were kept." in (
        response.content.decode()
    )
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {published.pk, in_flight.pk}


def test_a_viewer_sees_events_but_no_action_and_cannot_run_one() -> None:
    viewer = client_for("view")
    failed = event(status=Status.FAILED)
    page = viewer.get(CHANGELIST)
    assert page.status_code == 200
    assert "retry_now" not in page.content.decode()
    for action in ("retry_now", "discard", "delete_selected"):
        run_action(viewer, action, failed)
    assert OutboxEvent.objects.get(pk=failed.pk).status == Status.FAILED


def test_retry_needs_change_and_discard_needs_delete_permission() -> None:
    operator = client_for("view", "change")
    failed = event(status=Status.FAILED)
    run_action(operator, "discard", failed)
    assert OutboxEvent.objects.filter(pk=failed.pk).exists()
    run_action(operator, "retry_now", failed)
    assert OutboxEvent.objects.get(pk=failed.pk).status == Status.PENDING

    janitor = client_for("view", "delete")
    OutboxEvent.objects.filter(pk=failed.pk).update(status=Status.FAILED)
    run_action(janitor, "retry_now", failed)
    assert OutboxEvent.objects.get(pk=failed.pk).status == Status.FAILED
    run_action(janitor, "discard", failed)
    assert not OutboxEvent.objects.filter(pk=failed.pk).exists()


def test_events_cannot_be_added_edited_or_deleted_by_hand(staff_client: Client) -> None:
    row = event()
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    assert staff_client.get(f"{CHANGELIST}{row.pk}/delete/").status_code == 403
    staff_client.post(f"{CHANGELIST}{row.pk}/change/", {"event_type": "edited"})
    assert OutboxEvent.objects.get(pk=row.pk).event_type == "order.created"
    assert "delete_selected" not in staff_client.get(CHANGELIST).content.decode()
