"""Secrets and ``Authorization`` never leak, even from a receiver that echoes every header.

The receiver here answers each request with a status and, as its body, every header it got:
the refusal's excerpt and the outage's message then hold whatever the backend would show.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from django_broadcaster.backends.webhook import WebhookBackend
from django_broadcaster.models import OutboxEvent
from django_broadcaster.publishers import publisher
from django_broadcaster.testing import run_worker
from tests.settings import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "Bearer tok-3f9a1c-never-show"
QUERY_TOKEN = "q-77d2-never-show"


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status = 400

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = f"{self.path}\n{self.headers}".encode()
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [400, 503])
def test_nothing_shows_the_secret_or_the_token(
    echo: ThreadingHTTPServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    echo.status = status  # type: ignore[attr-defined]
    backend = WebhookBackend(
        "hook",
        url=f"http://127.0.0.1:{echo.server_port}/in?token={QUERY_TOKEN}",
        secrets=[WEBHOOK_SECRET],
        headers={"Authorization": TOKEN},
    )
    publisher.publish_event("tests.secret", "/shop", {"n": 1})
    with caplog.at_level(logging.DEBUG):
        run_worker(backends={"hook": backend})
    row = OutboxEvent.objects.get()
    assert "HTTP" in row.last_error  # the answer is told, masked
    out = io.StringIO()
    call_command("outbox_status", stdout=out)
    User.objects.create_superuser("admin", "a@example.com", "pw")
    client = Client()
    client.login(username="admin", password="pw")
    pages = [
        client.get("/admin/django_broadcaster/outboxevent/").content.decode(),
        client.get(f"/admin/django_broadcaster/outboxevent/{row.pk}/change/").content.decode(),
    ]
    for text in [row.last_error, str(row.delivery), out.getvalue(), caplog.text, *pages]:
        for secret in ("tok-3f9a1c", QUERY_TOKEN, WEBHOOK_SECRET, WEBHOOK_SECRET[6:]):
            assert secret not in text
