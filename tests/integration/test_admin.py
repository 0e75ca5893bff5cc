"""The admin lists and shows outbox events without letting anyone edit them."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from django_broadcaster.publishers import publisher

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_changelist_and_change_page_render(staff_client: Client) -> None:
    row = publisher.publish_event("order.created", "shop", {"order": 7})
    listing = staff_client.get("/admin/django_broadcaster/outboxevent/?status__exact=pending")
    assert listing.status_code == 200
    assert str(row.id) in listing.content.decode()
    detail = staff_client.get(f"/admin/django_broadcaster/outboxevent/{row.pk}/change/")
    assert detail.status_code == 200
    assert "&quot;order&quot;: 7" in detail.content.decode()


def test_events_cannot_be_added_by_hand(staff_client: Client) -> None:
    assert staff_client.get("/admin/django_broadcaster/outboxevent/add/").status_code == 403
