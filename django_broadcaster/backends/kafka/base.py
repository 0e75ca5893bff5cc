"""What the two Kafka backends share: options, the send template and the error policy.

:class:`BaseKafkaBackend` validates the options common to both producers, builds each message
with :mod:`.messages`, and decides what an error means: an error about the message itself refuses
that one event (``EventRejected``); any other error means the cluster or the producer takes no
messages now (``BackendUnavailable``, saying what failed: :mod:`.failures`), and the producer is
rebuilt on the next attempt. A subclass supplies the client: how to build and close the
producer, which errors concern a message, what an error says failed, and how to hand over a
batch and collect each message's outcome.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ...events import CloudEvent
from ...exceptions import BackendUnavailable, EventRejected, InvalidEvent
from ..base import BaseBackend, Rejections, secret_option_values
from ..naming import KAFKA, DestinationName
from .failures import ErrorLog, Problem
from .messages import MESSAGE_BUILDERS, KafkaMessage

logger = logging.getLogger(__name__)

#: A message handed to the producer, with the event it carries.
Pending = tuple[CloudEvent, KafkaMessage]
#: What :meth:`BaseKafkaBackend._client_deliver` returns: each refused event with its error.
Failures = list[tuple[CloudEvent, Exception]]
#: ``producer_options`` whose name holds one of these are secrets, masked in errors and logs.


class BaseKafkaBackend(BaseBackend):
    """Produce events to ``topic``, in ``content_mode`` "binary" (default) or "structured".

    ``topic`` is a name, a template over the event's attributes (``"events.{type}"``) or a
    callable taking the event and returning the topic, or ``(topic, key)`` to choose the message
    key too (:mod:`..naming`); the key is otherwise the ``partitionkey`` extension.

    ``producer_options`` go to the client's producer and override the backend's defaults;
    ``send_timeout`` (seconds) bounds every blocking call: connecting, waiting for buffer space
    and for acknowledgements. :meth:`open` (or the first send) builds the producer;
    :meth:`close` flushes and closes it. Subclasses implement the hooks named ``_client_*``.
    """

    #: The name of the client library and the extra that installs it, for the error message.
    client_library: ClassVar[str]
    extra: ClassVar[str]
    #: Whether the client reports each of its errors to ``_errors`` as they happen; if not,
    #: :meth:`_outage` logs the failure it reports.
    reports_errors: ClassVar[bool] = False

    def __init__(
        self,
        alias: str,
        *,
        bootstrap_servers: str | Sequence[str],
        topic: str | Callable[[CloudEvent], Any],
        content_mode: str = "binary",
        producer_options: Mapping[str, Any] | None = None,
        send_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self._require_library(self._client_missing(), self.client_library, self.extra)
        self.bootstrap_servers, self.topic = bootstrap_servers, topic
        self.content_mode, self.send_timeout = content_mode, send_timeout
        self._check()
        self._secrets = frozenset(secret_option_values(producer_options or {}))
        self._producer_config = self._client_config(producer_options or {})
        self._producer: Any = None
        #: The client's errors, logged once per state (see :class:`~.failures.ErrorLog`).
        self._errors = ErrorLog(f"Backend {alias!r} ({self.client_library})", self._scrub)

    def open(self) -> bool:
        """Build the producer if needed and return whether this call built it.

        Raises ``BackendUnavailable`` when no broker answers within ``send_timeout``.
        """
        if self._producer is not None:
            return False
        logger.debug("Backend %r: connecting to Kafka at %s.", self.alias, self.bootstrap_servers)
        self._producer = self._client_connect()
        self._errors.recovered()
        return True

    def close(self) -> None:
        """Flush and close the producer. Safe to call twice, or without :meth:`open`."""
        self._drop_producer()

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """Send ``events``, wait once for all acknowledgements; return the refused ones by id.

        Opens the producer if needed (the caller closes it). Raises ``BackendUnavailable``, with
        the cause chained, when no broker takes messages within ``send_timeout``, or the producer
        fails for any reason but the message; messages sent before that may still be written (at
        least once). The producer is then closed, and the next call builds a new one.
        """
        if not events:
            return {}
        try:
            self.open()
            rejected = self._send_all(events)
        except BackendUnavailable:
            # Start afresh on the next attempt: after a broker restart a producer can stay stuck
            # or, with idempotence, end in a fatal state (its producer id is unknown there).
            self._drop_producer()
            raise
        self._errors.recovered()
        return rejected

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} alias={self.alias!r} "
            f"bootstrap_servers={self.bootstrap_servers!r} topic={self.topic!r} "
            f"content_mode={self.content_mode!r}>"
        )

    def _send_all(self, events: Sequence[CloudEvent]) -> Rejections:
        rejected: Rejections = {}
        pending: list[Pending] = []
        build = MESSAGE_BUILDERS[self.content_mode]
        for event in events:
            try:
                pending.append((event, self._addressed(build(event), event)))
            except InvalidEvent as exc:
                rejected[str(event.id)] = self._refusal(event, exc)
            except Exception as exc:  # the topic is the event's or the callable's fault
                rejected[str(event.id)] = self._rejected(event, exc)
        for event, error in self._client_deliver(pending):
            rejected[str(event.id)] = self._refusal(event, error)
        return rejected

    def _addressed(self, message: KafkaMessage, event: CloudEvent) -> KafkaMessage:
        """Return ``message`` with the topic (and key) that ``topic`` gives for ``event``."""
        if self._topic.fixed is not None:
            return message  # the producers send a message without a topic to the fixed one
        topic, key = self._topic.resolve(event)
        if key is ...:
            return dataclasses.replace(message, topic=topic)
        key = key.encode() if isinstance(key, str) else key
        return dataclasses.replace(message, topic=topic, key=key)

    def _refusal(self, event: CloudEvent, exc: Exception) -> EventRejected:
        """Return the rejection of ``event`` caused by ``exc``; raise if ``exc`` is not its fault.

        Only an invalid event or a message error (size, format) refuses the event. Any other
        error concerns the producer or the cluster (unreachable, the producer's id unknown after
        the broker lost its state, a producer in a fatal state): ``BackendUnavailable``.
        """
        if not isinstance(exc, InvalidEvent) and not self._client_message_error(exc):
            raise self._outage(exc) from exc
        return self._rejected(event, exc)

    def _drop_producer(self) -> None:
        """Close the producer, if any; the next call builds another."""
        producer, self._producer = self._producer, None
        if producer is not None:
            self._client_close(producer)

    def _outage(self, exc: Exception, problem: Problem | None = None) -> BackendUnavailable:
        """Return the ``BackendUnavailable`` for the client's ``exc``, saying what failed.

        That is ``problem``, or what ``exc`` says. Unless the client reports its errors itself
        (``reports_errors``), it is logged too, once per state.
        """
        problem = problem or self._client_problem(exc)
        if not self.reports_errors:
            self._errors.error((problem and problem.kind, type(exc).__name__), problem or exc)
        return self._unavailable(problem or exc)

    def _servers(self) -> list[str]:
        """Return the bootstrap servers as a list of ``host:port``."""
        servers = self.bootstrap_servers
        listed = servers.split(",") if isinstance(servers, str) else servers
        return [server.strip() for server in listed if server.strip()]

    def _where(self) -> str:
        return f"Kafka at {','.join(self._servers())}"

    def _check(self) -> None:
        try:
            self._topic = DestinationName(self.topic, KAFKA)
        except ValueError as exc:
            self._improperly_configured(f"topic {exc}")
        if self.content_mode not in MESSAGE_BUILDERS:
            self._improperly_configured(f"content_mode must be one of {list(MESSAGE_BUILDERS)}")
        if not isinstance(self.send_timeout, int | float) or self.send_timeout <= 0:
            self._improperly_configured("send_timeout must be a positive number of seconds")
        if not self.bootstrap_servers:
            self._improperly_configured("bootstrap_servers must name at least one broker")

    # --- The client's part ------------------------------------------------------------------

    @classmethod
    def _client_missing(cls) -> ImportError | None:
        """Return the error of importing the client library, or ``None`` when it is there."""
        raise NotImplementedError(f"{cls.__name__} must implement _client_missing().")

    def _client_config(self, producer_options: Mapping[str, Any]) -> dict[str, Any]:
        """Return the producer's configuration; raise ``BroadcasterImproperlyConfigured``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _client_config().")

    def _client_connect(self) -> Any:
        """Return a new producer, connected; raise ``BackendUnavailable`` if none answers."""
        raise NotImplementedError(f"{type(self).__name__} must implement _client_connect().")

    def _client_close(self, producer: Any) -> None:
        """Flush and close ``producer`` within ``send_timeout``, logging (not raising) errors."""
        raise NotImplementedError(f"{type(self).__name__} must implement _client_close().")

    def _client_deliver(self, pending: Sequence[Pending]) -> Failures:
        """Produce every message, wait once for all; return the events whose message failed.

        Raises ``BackendUnavailable`` when the batch cannot be waited for within
        ``send_timeout``. Errors returned are classified by :meth:`_refusal`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement _client_deliver().")

    def _client_message_error(self, exc: Exception) -> bool:
        """Return whether ``exc`` concerns the message itself rather than the cluster."""
        raise NotImplementedError(f"{type(self).__name__} must implement _client_message_error().")

    def _client_problem(self, exc: Exception) -> Problem | None:
        """Return what the client's ``exc`` says failed, or ``None`` when it does not say."""
        raise NotImplementedError(f"{type(self).__name__} must implement _client_problem().")
