"""The inbox in the admin: read-only, dead letters listed by group, replayed with the change
permission (each once), never without it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.test import Client

from django_broadcaster.consumers.inbox import InboxEntry, InboxStatus, keep_dead_letter
from django_broadcaster.consumers.replay import dead_letter_groups
from django_broadcaster.events import CloudEvent
from django_broadcaster.formats import to_structured_json
from django_broadcaster.registry import consumer_registry
from tests.integration.test_admin import client_for as staff_client_for

pytestmark = pytest.mark.django_db

INBOX = "/admin/django_broadcaster/inboxentry/"
GROUPS = f"{INBOX}failures/"
TYPE = "shop.order.paid"


def client_for(*permissions: str) -> Client:
    """Return a client logged in as a staff user with ``permissions`` on inbox entries."""
    return staff_client_for(*permissions, model="inboxentry")


def dead_letter(number: int, error: str = "") -> CloudEvent:
    event = CloudEvent(event_type=TYPE, source="shop", id=f"order-{number}", data={"n": number})
    keep_dead_letter(
        source=event.source,
        event_id=str(event.id),
        event_type=TYPE,
        error=error or f"LookupError: order {number} not found",
        payload=to_structured_json(event).decode(),
        attempts=5,
    )
    return event


@pytest.fixture
def handled(global_handlers: Any) -> list[str]:
    """The ids of the events the consumers' handler of :data:`TYPE` handled, in order."""
    seen: list[str] = []
    global_handlers(consumer_registry, TYPE, lambda event: seen.append(event.id))
    return seen


def test_the_groups_page_lists_dead_letters_by_group() -> None:
    for number in (1, 22, 333):
        dead_letter(number)
    dead_letter(4, error="ValueError: bad amount")
    response = client_for("view").get(GROUPS)
    assert response.status_code == 200
    groups = [(g.kind.destination, g.kind.message, g.count) for g in response.context["groups"]]
    assert groups == [(TYPE, "order <n> not found", 3), (TYPE, "bad amount", 1)]
    page = response.content.decode()
    assert "Replay this group" not in page  # view only
    assert "Discard this group" not in page  # never for dead letters
    fingerprint = response.context["groups"][0].fingerprint
    listing = client_for("view").get(f"{INBOX}?failure={fingerprint}")
    assert {e.event_id for e in listing.context["cl"].result_list} == {
        "order-1",
        "order-22",
        "order-333",
    }


def test_replaying_a_group_needs_the_change_permission(handled: list[str]) -> None:
    dead_letter(1)
    fingerprint = dead_letter_groups()[0].fingerprint
    assert client_for("view").post(f"{GROUPS}{fingerprint}/replay/").status_code == 403
    assert client_for("view", "delete").post(f"{GROUPS}{fingerprint}/replay/").status_code == 403
    assert client_for("view", "delete").get(f"{GROUPS}{fingerprint}/discard/").status_code == 404
    assert handled == [] and InboxEntry.objects.failed().count() == 1


def test_replaying_a_group_handles_each_dead_letter_once(handled: list[str]) -> None:
    for number in (1, 2):
        dead_letter(number)
    other = dead_letter(3, error="ValueError: bad amount")
    fingerprint = dead_letter_groups()[0].fingerprint
    client = client_for("view", "change")
    done = client.post(f"{GROUPS}{fingerprint}/replay/", follow=True)
    assert "Replayed 2 dead letters: 2 processed, 0 failed, 0 gone." in done.content.decode()
    assert sorted(handled) == ["order-1", "order-2"]
    again = client.post(f"{GROUPS}{fingerprint}/replay/", follow=True)
    assert "Replayed 0 dead letters" in again.content.decode()
    assert sorted(handled) == ["order-1", "order-2"]
    assert list(InboxEntry.objects.failed().values_list("event_id", flat=True)) == [other.id]


def test_the_list_action_replays_the_selected_dead_letters(handled: list[str]) -> None:
    dead_letter(1)
    dead_letter(2)
    chosen = InboxEntry.objects.get(event_id="order-1")
    data = {"action": "replay_selected", ACTION_CHECKBOX_NAME: [str(chosen.pk)]}
    assert client_for("view").post(INBOX, data).status_code == 200  # not offered: nothing done
    assert handled == []
    client_for("view", "change").post(INBOX, data, follow=True)
    assert handled == ["order-1"]
    assert InboxEntry.objects.get(pk=chosen.pk).status == InboxStatus.PROCESSED


def test_entries_cannot_be_added_changed_or_deleted() -> None:
    dead_letter(1)
    entry = InboxEntry.objects.get()
    superuser = Client()
    superuser.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    assert superuser.get(f"{INBOX}{entry.pk}/change/").status_code == 200  # read only
    assert superuser.get(f"{INBOX}add/").status_code == 403
    assert superuser.get(f"{INBOX}{entry.pk}/delete/").status_code == 403
