"""A backend that POSTs events to a URL as signed CloudEvents webhooks.

Requests follow the CloudEvents HTTP binding in ``binary`` (default), ``structured`` or
``batched`` mode (:mod:`.messages`) and are signed per Standard Webhooks
(:mod:`django_broadcaster.signatures`); what each answer means is decided in :mod:`.answers`.
The URL may be a template or a callable (:mod:`.addressing`). The client is urllib3 (the
``webhooks`` extra): a pool of keep-alive connections per host, thread-safe, no redirects
followed, no retry of a request that may have reached the receiver (docs/backends.md says why).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from ...conf import get_settings
from ...events import CloudEvent
from ...exceptions import InvalidEvent
from ...signatures import Signer, secrets_problem
from ..base import BaseBackend, Rejections, masked
from .addressing import Addresses, Pools, Target
from .answers import DELIVERED, Answer, classify
from .messages import MODES, SINGLE_BUILDERS, WebhookRequest, batched_request

try:
    import urllib3
    from urllib3.util import Retry
except ImportError as exc:  # the extra is not installed: building the backend says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None
    #: A connection that failed before sending anything is tried once more (a stale pooled
    #: one); nothing else is retried here: the worker's breaker owns retries of an outage.
    _RETRIES: Final = Retry(
        total=1, connect=1, read=0, other=0, status=0, redirect=0, raise_on_redirect=False
    )

logger = logging.getLogger(__name__)

#: A request and where it goes.
Addressed = tuple[Target, WebhookRequest]
#: The answer of a request left unsent because another of its batch met an outage.
NOT_SENT: Final = Answer(unavailable=True, problem="not sent: the receiver is unavailable")

#: The share of ``SEND_DEADLINE`` a request may take by default, so an answer comes in time.
DEFAULT_TIMEOUT_SHARE: Final = 0.75
#: Set by the backend itself, so ``pool_options`` must not set them.
RESERVED_POOL_OPTIONS: Final = frozenset({"host", "port", "maxsize", "block", "timeout", "retries"})
#: Headers the backend writes itself, so ``headers`` must not set them.
RESERVED_PREFIXES: Final = ("ce-", "webhook-")


class _Masking(logging.Filter):
    """Mask the secrets in urllib3's own log lines, which show each request's path and query."""

    def __init__(self, secrets: frozenset[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = masked(record.getMessage(), self.secrets), None
        return True


class WebhookBackend(BaseBackend):
    """POST events to ``url``, signed with each of ``secrets`` (``whsec_...``).

    ``url`` is a URL, a template whose fields fill in its path and query
    (``"https://hooks.example.com/in/{type}"``), or a callable taking the event and returning
    the URL (:mod:`.addressing`); the events of a batch are grouped by URL.

    ``mode`` is ``"binary"``, ``"structured"`` or ``"batched"`` (up to ``batch_max_events``
    events a request). Up to ``max_in_flight`` requests of a batch are sent at once, on as many
    pooled keep-alive connections. Each request is given ``timeout`` (default: three quarters of
    ``SEND_DEADLINE``). ``headers`` are added to every request (``Authorization``, ...): their
    values, the secrets and the URL's query are never shown in ``repr()``, logs or errors.
    ``Retry-After`` is honoured up to ``max_retry_after``. ``pool_options`` go to urllib3's
    connection pool (``ca_certs``, ``cert_reqs``, ``assert_hostname``, ...).
    """

    def __init__(
        self,
        alias: str,
        *,
        url: str,
        secrets: Sequence[str],
        mode: str = "binary",
        headers: Mapping[str, str] | None = None,
        timeout: timedelta | None = None,
        max_in_flight: int = 4,
        batch_max_events: int = 100,
        max_retry_after: timedelta = timedelta(minutes=10),
        pool_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self._require_library(_MISSING, "urllib3", "webhooks")
        self.url, self.mode, self.timeout = url, mode, timeout
        self.max_in_flight, self.batch_max_events = max_in_flight, batch_max_events
        self.max_retry_after = max_retry_after
        self._headers = dict(headers or {})
        self._pool_options = dict(pool_options or {})
        self._check(secrets)
        self._signer = Signer(secrets)
        self._shown = self._addresses.shown
        self._secrets = frozenset(
            {*secrets, *(str(value) for value in self._headers.values())} - {""}
        ).union(self._addresses.secrets)
        self._pools = Pools(self._new_pool)
        self._opened = False
        self._executor: ThreadPoolExecutor | None = None
        self._timeout: urllib3.Timeout | None = None
        self._masking = _Masking(self._secrets)

    def open(self) -> bool:
        """Build the connection pool and the senders if needed; return whether this call did.

        Connections are made on the first request, so an unreachable receiver surfaces as
        ``BackendUnavailable`` from :meth:`send_batch`.
        """
        if self._opened:
            return False
        self._opened = True
        seconds = (
            self.timeout or get_settings().send_deadline * DEFAULT_TIMEOUT_SHARE
        ).total_seconds()
        self._timeout = urllib3.Timeout(total=seconds)
        logging.getLogger("urllib3.connectionpool").addFilter(self._masking)
        if self.max_in_flight > 1:
            self._executor = ThreadPoolExecutor(
                self.max_in_flight, f"broadcaster-{self.alias}-http"
            )
        return True

    def close(self) -> None:
        """Close the pooled connections and stop the senders. Safe to call twice."""
        opened, self._opened = self._opened, False
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._pools.close()
        if opened:
            logging.getLogger("urllib3.connectionpool").removeFilter(self._masking)

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """POST ``events`` and return the refused ones by event id (see :mod:`.answers`).

        Raises ``BackendUnavailable`` when any request met an outage (no answer, 408, 429, 5xx),
        carrying the longest ``Retry-After`` asked; events of the batch that were delivered are
        sent again with the rest, and the receiving view's inbox skips them.
        """
        if not events:
            return {}
        self.open()
        rejected: Rejections = {}
        requests = self._requests(events, rejected)
        answers = self._post_all(requests)
        outages = [answer for answer in answers if answer.unavailable and answer is not NOT_SENT]
        if outages:
            waits = [answer.retry_after for answer in outages if answer.retry_after is not None]
            raise self._unavailable(outages[0].problem, retry_after=max(waits, default=None))
        for (_, request), answer in zip(requests, answers, strict=True):
            if not answer.delivered:
                rejected.update(
                    {str(e.id): self._rejected(e, answer.problem) for e in request.events}
                )
        return rejected

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} alias={self.alias!r} url={self._shown!r} mode={self.mode!r}>"
        )

    def _requests(self, events: Sequence[CloudEvent], rejected: Rejections) -> list[Addressed]:
        """Return the requests carrying ``events``, each with its target, in the events' order
        per target; an event whose URL or request cannot be made is ``rejected``."""
        grouped: dict[Target, list[CloudEvent]] = {}
        for event in events:
            try:
                grouped.setdefault(self._addresses.target(event), []).append(event)
            except Exception as exc:  # the URL is the event's or the callable's fault
                rejected[str(event.id)] = self._rejected(event, f"no URL for this event: {exc}")
        if self.mode == "batched":
            size = self.batch_max_events
            return [
                (target, batched_request(group[i : i + size]))
                for target, group in grouped.items()
                for i in range(0, len(group), size)
            ]
        build, requests = SINGLE_BUILDERS[self.mode], []
        for target, group in grouped.items():
            for event in group:
                try:
                    requests.append((target, build(event)))
                except InvalidEvent as exc:
                    rejected[str(event.id)] = self._rejected(event, exc)
        return requests

    def _post_all(self, requests: list[Addressed]) -> list[Answer]:
        """Return each request's answer; after an outage, the requests not yet started are not
        sent (:data:`NOT_SENT`), so a receiver that asks for a pause gets one at once."""
        outage = threading.Event()

        def post(addressed: Addressed) -> Answer:
            if outage.is_set():
                return NOT_SENT
            answer = self._post(*addressed)
            if answer.unavailable:
                outage.set()
            return answer

        if self._executor is None or len(requests) == 1:
            return [post(request) for request in requests]
        return list(self._executor.map(post, requests))

    def _post(self, target: Target, request: WebhookRequest) -> Answer:
        """POST ``request`` to ``target``, signed now, and return what its answer means."""
        now = datetime.now(timezone.utc)
        signed = self._signer.headers(request.message_id, request.body, now)
        headers = {**self._headers, **request.headers, **signed}
        try:
            response = self._pools.get(target.origin).urlopen(
                "POST",
                target.path,
                body=request.body,
                headers=headers,
                retries=_RETRIES,
                redirect=False,
                timeout=self._timeout,
            )
        except urllib3.exceptions.HTTPError as exc:
            return Answer(unavailable=True, problem=f"{type(exc).__name__}: {exc}")
        if 200 <= response.status < 300:
            return DELIVERED
        answer_headers = {name.lower(): value for name, value in response.headers.items()}
        return classify(
            response.status,
            response.reason or "",
            answer_headers,
            response.data,
            cap=self.max_retry_after,
        )

    def _new_pool(self, origin: str) -> urllib3.HTTPConnectionPool:
        return urllib3.connection_from_url(
            origin, maxsize=self.max_in_flight, block=True, **self._pool_options
        )

    def _where(self) -> str:
        return f"the webhook {self._shown}"

    def _check(self, secrets: Sequence[str]) -> None:
        try:
            self._addresses = Addresses(self.url)
        except ValueError as exc:
            self._improperly_configured(f"url {exc}")
        if problem := secrets_problem(secrets):
            self._improperly_configured(problem)
        if self.mode not in MODES:
            self._improperly_configured(
                f"mode must be one of {', '.join(MODES)}, got {self.mode!r}"
            )
        for name in ("max_in_flight", "batch_max_events"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self._improperly_configured(f"{name} must be a positive integer")
        for name in ("timeout", "max_retry_after"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, timedelta) and value > timedelta(0)):
                self._improperly_configured(f"{name} must be a positive timedelta")
        if clashes := sorted(RESERVED_POOL_OPTIONS.intersection(self._pool_options)):
            self._improperly_configured(f"pool_options must not set {clashes}")
        self._check_headers()

    def _check_headers(self) -> None:
        for name, value in self._headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                self._improperly_configured("headers must map names to strings")
            if name.lower() == "content-type" or name.lower().startswith(RESERVED_PREFIXES):
                self._improperly_configured(
                    f"headers must not set {name!r}: the binding and the signature set it"
                )
