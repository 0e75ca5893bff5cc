"""The receiving end of the webhook backend: a view that verifies, decodes and handles events.

Route it in a URLconf (``path("webhooks/", webhook_view)``); it takes ``POST`` only and is
exempt from CSRF, the signature standing in for the token. What it answers:

* **401** when the Standard Webhooks signature is missing, does not match any secret of
  ``BROADCASTER["WEBHOOK_RECEIVER"]["SECRETS"]``, or is timestamped further than ``TOLERANCE``
  from now (an old request replayed);
* **400** when the body is not a CloudEvent in binary, structured or batched mode, or a single
  event's id is not the signed ``webhook-id``;
* **409** when the inbox has every event of the request already (a replayed request, or a retry
  whose first answer was lost): nothing runs, and the webhook backend counts the events delivered;
* **500** when a handler raised, **503** when the database could not be reached: everything is
  rolled back and the sender sends again later. An event whose handlers failed ``MAX_ATTEMPTS``
  times (default 5) in this process is kept as a dead letter (a failed inbox entry, as the
  consumer commands keep them) and the rest of the request goes on, so that one bad event cannot
  hold up the sender for ever;
* **200** otherwise, once the one transaction holding every event's handlers and inbox entries
  has committed: ``{"processed": n, "duplicates": n, "ignored": n, "dead_lettered": n}``.

The handlers are those of :data:`~django_broadcaster.registry.consumer_registry`, as for the
consumer commands; an event no handler wants is ignored without an inbox entry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from django.db import InterfaceError, OperationalError, router, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .conf import SETTING_NAME, raw_settings
from .consumers.decoding import BATCH_PREFIX, UndecodableMessage, decode_http_request
from .consumers.inbox import InboxEntry, keep_dead_letter, mark_received
from .events import CloudEvent
from .exceptions import BroadcasterImproperlyConfigured, InvalidEvent
from .formats import to_structured_json
from .registry import EventRegistry, consumer_registry
from .signatures import LIBRARY_TOLERANCE, SignatureInvalid, Signer, secrets_problem

logger = logging.getLogger(__name__)

SETTING_KEY: Final = "WEBHOOK_RECEIVER"
RECEIVER_KEYS: Final = frozenset({"SECRETS", "TOLERANCE", "MAX_ATTEMPTS"})
DEFAULT_TOLERANCE: Final = timedelta(minutes=5)
DEFAULT_MAX_ATTEMPTS: Final = 5


def receiver_settings_errors() -> list[str]:
    """Return a message for each problem in ``BROADCASTER["WEBHOOK_RECEIVER"]``; none if unset.

    The messages never quote a secret.
    """
    config = raw_settings().get(SETTING_KEY)
    where = f'{SETTING_NAME}["{SETTING_KEY}"]'
    if config is None:
        return []
    if not isinstance(config, Mapping):
        return [f"{where} must be a dict with SECRETS and TOLERANCE."]
    errors = [f"{where} has an unknown key {key!r}." for key in config if key not in RECEIVER_KEYS]
    problem = secrets_problem(config.get("SECRETS"))
    if problem:
        errors.append(f"{where}['SECRETS']: {problem}.")
    tolerance = config.get("TOLERANCE", DEFAULT_TOLERANCE)
    if not (isinstance(tolerance, timedelta) and timedelta(0) < tolerance <= LIBRARY_TOLERANCE):
        errors.append(f"{where}['TOLERANCE'] must be a timedelta above 0, at most 5 minutes.")
    attempts = config.get("MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        errors.append(f"{where}['MAX_ATTEMPTS'] must be an integer of at least 1.")
    return errors


class FailedAttempts:
    """Count each event's failed attempts in this process; thread-safe.

    Per process, and forgotten on restart: with several processes an event may be tried up to
    ``MAX_ATTEMPTS`` times in each before it is a dead letter.
    """

    #: The most events counted at once; past it the counts start again, costing more attempts.
    limit = 10_000

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def failed(self, event: CloudEvent) -> int:
        """Count one more failure of ``event``; return how many it has had."""
        with self._lock:
            if len(self._counts) >= self.limit:
                self._counts.clear()
            key = (event.source, str(event.id))
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def forget(self, event: CloudEvent) -> None:
        """Drop the count of ``event``, handled at last."""
        with self._lock:
            self._counts.pop((event.source, str(event.id)), None)


class WebhookReceiver(View):
    """Verify, decode and handle signed CloudEvents webhooks (see the module docstring).

    ``registry``, ``using`` (the inbox's database alias) and ``attempts`` (a
    :class:`FailedAttempts`) may be set with ``as_view()``.
    """

    http_method_names = ["post"]
    registry: EventRegistry = consumer_registry
    using: str | None = None
    #: The failed attempts of each event in this process, shared by every request.
    attempts: FailedAttempts = FailedAttempts()

    @method_decorator(csrf_exempt)
    @method_decorator(transaction.non_atomic_requests)  # 2xx only after our own commit
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Dispatch to :meth:`post`, or answer 405 to any other method."""
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest) -> HttpResponse:
        """Answer one webhook request as the module docstring says."""
        signer, tolerance = _receiver_config()
        headers = dict(request.headers)
        body = request.body
        try:
            message_id = signer.verify(headers, body, tolerance)
        except SignatureInvalid as exc:
            return _answer(401, f"signature refused: {exc}")
        try:
            events = decode_http_request(headers, body)
            if not _is_batch(headers):
                _check_id(events[0], message_id)
        except (UndecodableMessage, InvalidEvent) as exc:
            return _answer(400, f"not a CloudEvent: {exc}")
        return self._handle(events)

    def _handle(self, events: list[CloudEvent]) -> HttpResponse:
        counts = {"processed": 0, "duplicates": 0, "ignored": 0, "dead_lettered": 0}
        database = self.using or router.db_for_write(InboxEntry)
        try:
            with transaction.atomic(using=database):
                for event in events:
                    counts[self._run(event, database)] += 1
        except (OperationalError, InterfaceError) as exc:
            logger.warning("Webhook events wait: the database is unavailable (%s).", exc)
            return _answer(503, "the database is unavailable")
        except Exception as exc:  # a handler's: the sender tries again later
            logger.exception("A webhook event's handler failed; the request was rolled back.")
            return _answer(500, f"a handler failed: {type(exc).__name__}")
        if counts["duplicates"] == len(events) and events:
            return _answer(409, "every event of the request was handled already")
        return JsonResponse(counts)

    def _run(self, event: CloudEvent, database: str) -> str:
        """Run ``event``'s handlers unless the inbox has it; return which count it adds to.

        A handler's error propagates, unless the event has failed ``MAX_ATTEMPTS`` times in
        this process: it is then kept as a dead letter, so that it stops holding up the sender.
        """
        handlers = self.registry.handlers_for(event.event_type)
        if not handlers:
            return "ignored"
        try:
            with transaction.atomic(using=database):
                if not mark_received(event, using=database):
                    return "duplicates"
                for handler in handlers.values():
                    handler(event)
        except (OperationalError, InterfaceError):
            raise  # an outage, never the event's failure
        except Exception as exc:
            if self.attempts.failed(event) < _max_attempts():
                raise
            _keep_dead_letter(event, exc, database)
            return "dead_lettered"
        self.attempts.forget(event)
        return "processed"


#: The view to route: ``path("webhooks/", webhook_view)``.
webhook_view = WebhookReceiver.as_view()


def _receiver_config() -> tuple[Signer, timedelta]:
    """Return the signer of the configured secrets and the tolerance, or raise if unset or bad."""
    errors = receiver_settings_errors()
    config = raw_settings().get(SETTING_KEY)
    if errors or config is None:
        problem = errors[0] if errors else f'{SETTING_NAME}["{SETTING_KEY}"] is not set.'
        raise BroadcasterImproperlyConfigured(f"The webhook receiver cannot verify: {problem}")
    return Signer(config["SECRETS"]), config.get("TOLERANCE", DEFAULT_TOLERANCE)


def _max_attempts() -> int:
    config = raw_settings().get(SETTING_KEY) or {}
    return int(config.get("MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def _keep_dead_letter(event: CloudEvent, error: Exception, database: str) -> None:
    """Keep ``event`` as a failed inbox entry, which also makes a re-send a duplicate."""
    keep_dead_letter(
        source=event.source,
        event_id=str(event.id),
        event_type=event.event_type,
        error=f"{type(error).__name__}: {error}",
        payload=to_structured_json(event, ascii_only=True).decode(),
        using=database,
    )
    logger.error("Gave up on webhook event %s (%s): %s", event.id, event.event_type, error)


def _is_batch(headers: Mapping[str, str]) -> bool:
    return any(
        name.lower() == "content-type" and value.lower().startswith(BATCH_PREFIX)
        for name, value in headers.items()
    )


def _check_id(event: CloudEvent, message_id: str) -> None:
    """Refuse an event whose id is not the signed one: binary mode's ``ce-`` headers are not."""
    if message_id != event.id:
        raise InvalidEvent(f"the event's id is not the signed webhook-id {message_id!r}")


def _answer(status: int, problem: str) -> JsonResponse:
    return JsonResponse({"error": problem}, status=status)
