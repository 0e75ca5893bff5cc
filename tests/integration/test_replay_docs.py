"""The replay sections of docs/operations.md (``outbox_requeue``) and docs/consumers.md
(``consume_replay``), run as written on seeded failures.

Those pages are not followed whole by ``tests/newcomer`` (they need a failing broker or handler
to make failures), so the sections' commands run here, through ``call_command``, on the
failures the pages describe; each must print what the page shows.
"""

from __future__ import annotations

import shlex
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from django_broadcaster.consumers.inbox import InboxEntry, keep_dead_letter
from django_broadcaster.events import CloudEvent
from django_broadcaster.formats import to_structured_json
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import consumer_registry
from tests.newcomer.pages import Command, output_matches, read_page

pytestmark = pytest.mark.django_db
DOCS = Path(__file__).resolve().parents[2] / "docs"


def section_commands(page: str, heading: str) -> list[Command]:
    """Return the console commands of the section ``heading`` of ``page``, in order."""
    text = (DOCS / page).read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    first, last = text[:start].count("\n") + 1, text[: end if end > 0 else None].count("\n") + 1
    return [
        command
        for block in read_page(DOCS / page)
        if block.language == "console" and first <= block.line <= last
        for command in block.commands
    ]


def run_as_written(command: Command) -> None:
    words = shlex.split(command.shell)
    assert words[:2] == ["python", "manage.py"], command.shell
    out = StringIO()
    call_command(*words[2:], stdout=out)
    assert output_matches(command.output, out.getvalue()), (command.shell, out.getvalue())


def refused_by_kafka() -> None:
    """Make three failed events, refused by Kafka as docs/operations.md shows."""
    for partition in (7, 9, 7):
        row = publisher.publish_event("order.created", "shop", {"order": partition})
        error = f"EventRejected: Broker: topic orders.v2 has no partition {partition}"
        entry = {"state": "rejected", "attempts": 5, "at": "2026-12-07T10:00:00Z", "error": error}
        OutboxEvent.objects.filter(pk=row.pk).update(
            status=Status.FAILED, delivery={"kafka": entry}, last_error=f"kafka: {error}"
        )


def test_the_requeue_section_runs_as_written() -> None:
    refused_by_kafka()
    commands = section_commands("operations.md", "## Retrying failed events: `outbox_requeue`")
    assert len(commands) == 3
    for command in commands:
        run_as_written(command)
    assert OutboxEvent.objects.filter(status=Status.PENDING).count() == 3


def test_the_consume_replay_section_runs_as_written(global_handlers: Any) -> None:
    for number in (1, 2):
        event = CloudEvent(event_type="shop.order.paid", source="shop", id=f"order-{number}")
        keep_dead_letter(
            source=event.source,
            event_id=str(event.id),
            event_type=event.event_type,
            error="DoesNotExist: Customer matching query does not exist.",
            payload=to_structured_json(event).decode(),
            attempts=5,
        )
    handled: list[str] = []
    global_handlers(consumer_registry, "shop.order.paid", lambda event: handled.append(event.id))
    commands = section_commands("consumers.md", "## Replaying dead letters: `consume_replay`")
    assert len(commands) == 2
    for command in commands:
        run_as_written(command)
    assert sorted(handled) == ["order-1", "order-2"]
    assert not InboxEntry.objects.failed().exists()


def test_the_admin_pages_code_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    refused_by_kafka()
    [block] = [
        block
        for block in read_page(DOCS / "admin.md")
        if block.language == "python" and "failure_groups" in block.text
    ]
    exec(block.text, {})  # the page's own code
    assert capsys.readouterr().out == (
        "9d81769770ec 3 kafka Broker: topic orders.v2 has no partition <n>\n"
    )
    assert OutboxEvent.objects.filter(status=Status.PENDING).count() == 3
