"""The RabbitMQ examples of docs/backends.md and docs/consumers.md, run as written.

Those pages are not run whole as a newcomer would (they show every transport, and their
examples need brokers a reader may not have), so their RabbitMQ blocks are run here, on the
suite's broker: the settings block must pass ``manage.py check`` and deliver, and the
``consume_rabbitmq`` command line must declare its queue and consume what was published.
"""

from __future__ import annotations

import doctest
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.checks import check_settings
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.worker import Worker
from harness.process import Process
from tests.amqp import Queue
from tests.newcomer.pages import read_page
from tests.workers import start_command

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def settings_block() -> dict[str, Any]:
    """Run the RabbitMQBackend settings block of backends.md; return its ``BROADCASTER``."""
    [block] = [
        block
        for block in read_page(DOCS / "backends.md")
        if block.language == "python" and "RabbitMQBackend" in block.text
    ]
    namespace: dict[str, Any] = {}
    exec(block.text, namespace)  # the page's own code, with RABBITMQ_URL from the environment
    broadcaster: dict[str, Any] = namespace["BROADCASTER"]
    return broadcaster


def consumer_command() -> list[str]:
    """Return the arguments of the ``consume_rabbitmq`` command line of consumers.md."""
    [line] = [
        command.shell
        for block in read_page(DOCS / "consumers.md")
        for command in block.commands
        if "consume_rabbitmq" in command.shell
    ]
    words = shlex.split(line)
    assert words[:3] == ["python", "manage.py", "consume_rabbitmq"], line
    return words[3:]


@pytest.fixture
def billing_deleted_after(rabbitmq_url: str) -> Iterator[None]:
    """Delete the docs' queue, ``billing``, once the test is done."""
    yield
    Queue(rabbitmq_url, "billing").delete()


def consume(broadcaster: dict[str, Any]) -> Process:
    env = {"TEST_BROADCASTER_BACKENDS": json.dumps(broadcaster["BACKENDS"])}
    return start_command("consume_rabbitmq", *consumer_command(), "--burst", env=env)


@pytest.mark.usefixtures("billing_deleted_after")
def test_the_documented_settings_and_command_deliver_and_consume(rabbitmq_url: str) -> None:
    broadcaster = settings_block()
    assert broadcaster["BACKENDS"]["rabbitmq"]["OPTIONS"]["url"] == rabbitmq_url
    with consume(broadcaster) as first:  # declares and binds the queue, as the docs say to
        assert first.wait() == 0, first.output()

    with override_settings(BROADCASTER=broadcaster):
        assert check_settings() == []
        for number in range(3):
            publisher.publish_event("shop.order.created", "/shop", {"order": number})
        assert Worker(burst=True).run().published == 3
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {Status.PUBLISHED}

    with consume(broadcaster) as second:
        assert second.wait() == 0, second.output()
    assert "Processed 0, duplicates 0, ignored 3" in second.output()  # no handlers here


def section(heading: str) -> str:
    text = (DOCS / "backends.md").read_text()
    return text[text.index(heading) :].split("\n### ")[0]


def test_the_routing_key_template_routes_each_tenant_and_type(unique_name: str) -> None:
    broadcaster = settings_block()
    [template_block] = [
        block
        for block in read_page(DOCS / "backends.md")
        if block.language == "python" and '["routing_key"]' in block.text
    ]
    exec(template_block.text, {"BROADCASTER": broadcaster})
    url = broadcaster["BACKENDS"]["rabbitmq"]["OPTIONS"]["url"]
    types = ["shop.order.created", "shop.invoice.sent", "shop.user.signed_up"]
    queues = [Queue(url, f"{unique_name}-{n}") for n in range(3)]
    try:
        for queue, event_type in zip(queues, types, strict=True):
            queue.bind(f"{unique_name}.{event_type}")  # the docs' key: tenant, then type
        with override_settings(BROADCASTER=broadcaster):
            assert check_settings() == []
            for event_type in types:
                publisher.publish_event(event_type, "/shop", {}, extensions={"tenant": unique_name})
            assert Worker(burst=True).run().published == 3
        got = [[p.headers["cloudEvents_type"] for p, _ in q.get_all()] for q in queues]
    finally:
        for queue in queues:
            queue.delete()
    assert got == [[event_type] for event_type in types]


def test_the_routing_key_pycon_block_prints_what_it_shows() -> None:
    [code] = re.findall(r"```pycon\n(.*?)```", section("### Routing keys from the event"), re.S)
    test = doctest.DocTestParser().get_doctest(code, {}, "backends.md", "backends.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
