"""A webhook receiver written only with the cloudevents SDK, standardwebhooks and the stdlib.

It proves that what the webhook backend sends is read by the reference libraries: each request's
signature is checked with ``standardwebhooks.Webhook.verify`` and its events decoded with the
SDK's HTTP binding (a batch with the SDK's JSON format). Each event accepted for the first time
is printed as ``received <id> <type> <data as JSON>``, then ``at <path and query> <id>``; a
request whose events were all seen already is answered 409, as the project's receiving view
does. Run it as::

    python tests/webhooks/sdk_receiver.py PORT SECRET [BEHAVIOUR_FILE]

To play a failing receiver, ``BEHAVIOUR_FILE`` holds JSON read on every request:
``{"status": 429, "retry_after": "3", "hang_s": 5}`` answers 429 with that ``Retry-After``
after verifying, ``hang_s`` seconds late; a missing file or status 200 means healthy. Each
request is printed first as ``request <unix time> <status>``.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks import Webhook, WebhookVerificationError

FORMAT = JSONFormat()
SEEN: set[tuple[str, str]] = set()
LOCK = threading.Lock()  # requests run on threads: one print, one check of SEEN at a time


def decode(headers: dict[str, str], body: bytes) -> list[CloudEvent]:
    """Return the request's events: batched, structured or binary mode."""
    if headers.get("content-type", "").startswith("application/cloudevents-batch"):
        return [FORMAT.read(CloudEvent, json.dumps(item).encode()) for item in json.loads(body)]
    return [from_http(HTTPMessage(headers=headers, body=body), FORMAT, CloudEvent)]


def read_behaviour() -> dict[str, object]:
    """Return what the behaviour file asks, or nothing (healthy)."""
    path = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    if path is None or not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the backend's pool expects

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            Webhook(sys.argv[2]).verify(body, headers, json_parse=False)
        except WebhookVerificationError as exc:
            return self.answer(401, str(exc))
        events = decode(headers, body)
        behaviour = read_behaviour()
        status = int(behaviour.get("status", 200))
        with LOCK:
            print(f"request {time.time():.3f} {status}", flush=True)
        time.sleep(float(behaviour.get("hang_s", 0)))
        if status != 200:
            return self.answer(status, "told to fail", behaviour.get("retry_after"))
        with LOCK:
            fresh = [e for e in events if (e.get_source(), e.get_id()) not in SEEN]
            for event in fresh:
                SEEN.add((event.get_source(), event.get_id()))
                data = json.dumps(event.get_data(), sort_keys=True, ensure_ascii=False)
                print(f"received {event.get_id()} {event.get_type()} {data}", flush=True)
                print(f"at {self.path} {event.get_id()}", flush=True)
        self.answer(200 if fresh else 409, "ok" if fresh else "seen already")

    def answer(self, status: int, text: str, retry_after: str | None = None) -> None:
        payload = text.encode()
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per event on stdout, nothing else


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver)
    print(f"listening on {server.server_port}", flush=True)
    server.serve_forever()
