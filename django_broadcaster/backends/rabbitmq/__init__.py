"""A backend that publishes each event to a RabbitMQ exchange, with publisher confirms.

Messages follow the CloudEvents AMQP binding (:mod:`.messages`) and are persistent; an event is
delivered only once the broker has confirmed it. A nack, or a message returned as unroutable
(``mandatory``, the default), refuses that event (a retry is spent); a broker that cannot be
reached, a connection or channel that fails, or confirms still missing at ``send_timeout``
make the backend unavailable (the events wait, no retry is spent). The client is pika's
asynchronous connection (:mod:`.confirms`), for the throughput of many confirms in flight.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

from ...conf import get_settings
from ...events import CloudEvent
from ...exceptions import InvalidEvent
from ..base import BaseBackend, Rejections
from ..naming import AMQP, DestinationName
from ..urls import mask_url, password_cut_problem, url_passwords
from .messages import MESSAGE_BUILDERS, AmqpMessage

try:
    import pika

    from .client_log import quiet
    from .confirms import ChannelFailed, ConfirmingChannel, Outgoing
except ImportError as exc:  # the extra is not installed: building the backend says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

__all__ = ["RabbitMQBackend"]

logger = logging.getLogger(__name__)

SCHEMES: Final = ("amqp", "amqps")
#: What AMQP 0-9-1 allows in an exchange name (a short string of these characters).
_EXCHANGE_NAME: Final = re.compile(r"[A-Za-z0-9_.:-]{0,255}")
#: AMQP's short strings (routing keys) hold at most this many bytes.
SHORT_STRING_BYTES: Final = 255


class RabbitMQBackend(BaseBackend):
    """Publish events to ``exchange`` (default ``amq.topic``), one persistent message each.

    ``url`` is an ``amqp://`` or ``amqps://`` URL as pika reads it (user, password, host, port,
    virtual host, and options such as ``heartbeat`` in the query); heartbeats are off unless it
    sets them. The routing key is the event's type, or ``routing_key``: a fixed key, a template
    over the event's attributes (``"shop.{type}"``) or a callable taking the event
    (:mod:`..naming`), cut to AMQP's 255 bytes. ``content_mode`` is "binary" (default) or
    "structured". ``mandatory`` makes the broker return a message no queue is bound for, which
    refuses the event; without it such a message is confirmed and dropped. ``send_timeout``
    (seconds; default ``BROADCASTER["SEND_DEADLINE"]``) bounds each batch, connecting
    included. The connection is made on the first send and kept; :meth:`close` closes it.
    Passwords never appear in ``repr()``, log lines or exception messages.
    """

    def __init__(
        self,
        alias: str,
        *,
        url: str,
        exchange: str = "amq.topic",
        routing_key: str | None = None,
        content_mode: str = "binary",
        mandatory: bool = True,
        send_timeout: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self._require_library(_MISSING, "pika", "rabbitmq")
        self.url, self.exchange, self.routing_key = url, exchange, routing_key
        self.content_mode, self.mandatory = content_mode, mandatory
        if send_timeout is None:
            send_timeout = get_settings().send_deadline.total_seconds()
        self.send_timeout = send_timeout
        self._secrets = frozenset(url_passwords(url)) if isinstance(url, str) else frozenset()
        self._check()
        self._parameters = self._connection_parameters()
        self._build = MESSAGE_BUILDERS[content_mode]
        self._channel: ConfirmingChannel | None = None
        self._lock = threading.Lock()  # close() may come from another thread than a send
        self._down_since: float | None = None  # when the broker became unreachable

    def open(self) -> bool:
        """Prepare the channel if needed and return whether this call did.

        pika connects on the first publish, so an unreachable broker surfaces as
        ``BackendUnavailable`` from :meth:`send` or :meth:`send_batch`.
        """
        if self._channel is not None:
            return False
        self._channel = ConfirmingChannel(self._parameters, self.exchange, self.mandatory)
        return True

    def close(self) -> None:
        """Close the connection. Safe to call twice, or without :meth:`open`."""
        with self._lock:
            channel, self._channel = self._channel, None
            if channel is not None:
                with quiet():
                    channel.close()

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """Publish ``events`` and wait for the broker's confirms; return the refused ones by id.

        Raises ``BackendUnavailable``, with the cause chained, when the broker cannot be reached,
        the connection or channel fails (an exchange that does not exist closes the channel), or
        confirms are missing at ``send_timeout``; messages confirmed before the failure stay
        published, so they may be sent again.
        """
        rejected: Rejections = {}
        outgoing: list[Outgoing] = []
        sent: list[CloudEvent] = []
        for event in events:
            try:
                outgoing.append(self._outgoing(event))
            except InvalidEvent as exc:
                rejected[str(event.id)] = self._rejected(event, exc)
            else:
                sent.append(event)
        if not outgoing:
            return rejected
        with self._lock:
            self.open()
            assert self._channel is not None
            try:
                with quiet():
                    refused = self._channel.publish(outgoing, self.send_timeout)
            except ChannelFailed as exc:
                self._note_outage(exc)
                raise self._unavailable(exc) from exc
            self._note_recovery()
        for index, reason in refused.items():
            rejected[str(sent[index].id)] = self._rejected(sent[index], reason)
        return rejected

    @property
    def server(self) -> str:
        """Return the broker's URL with any password masked."""
        return mask_url(self.url)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} alias={self.alias!r} server={self.server!r} "
            f"exchange={self.exchange!r}>"
        )

    def _outgoing(self, event: CloudEvent) -> Outgoing:
        """Return the routing key, message and id of ``event``; raise ``InvalidEvent``."""
        message: AmqpMessage = self._build(event)
        if self._key is not None:
            routing_key = self._key.fixed or self._resolved_key(event)
        else:
            routing_key = event.event_type
            if len(routing_key.encode()) > SHORT_STRING_BYTES:
                raise InvalidEvent(f"the routing key is over AMQP's {SHORT_STRING_BYTES} bytes")
        return routing_key, message, str(event.id)

    def _note_outage(self, error: ChannelFailed) -> None:
        """Log the start of an outage, once: pika's own lines about it are DEBUG."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning("Backend %r: %s is unavailable: %s", *self._told(error))

    def _note_recovery(self) -> None:
        if self._down_since is not None:
            down, self._down_since = time.monotonic() - self._down_since, None
            logger.info("Backend %r: %s is reachable again, after %.0f s.", *self._told(), down)

    def _told(self, *more: object) -> tuple[object, ...]:
        return (self.alias, self._where(), *(self._scrub(item) for item in more))

    def _resolved_key(self, event: CloudEvent) -> str:
        assert self._key is not None
        try:
            return self._key.resolve(event)[0]
        except Exception as exc:  # the key is the event's or the callable's fault: refuse it
            raise InvalidEvent(f"no routing key for this event: {exc}") from exc

    def _where(self) -> str:
        return f"RabbitMQ at {self.server}"

    def _connection_parameters(self) -> pika.URLParameters:
        try:
            parameters = pika.URLParameters(self.url)
        except (ValueError, TypeError) as exc:
            self._improperly_configured(f"pika cannot read url: {self._scrub(exc)}")
        if "heartbeat" not in self.url.partition("?")[2]:
            parameters.heartbeat = 0  # nothing reads the socket between sends: see .confirms
        return parameters

    def _check(self) -> None:
        if not isinstance(self.url, str) or not self.url.lower().startswith(
            tuple(f"{scheme}://" for scheme in SCHEMES)
        ):
            self._improperly_configured(f"url must start with one of {list(SCHEMES)}")
        if problem := password_cut_problem(self.url, "pika"):
            self._improperly_configured(problem)
        if not isinstance(self.exchange, str) or not _EXCHANGE_NAME.fullmatch(self.exchange):
            self._improperly_configured(
                "exchange must be a string of at most 255 letters, digits, '-', '_', '.' or ':'"
            )
        self._key: DestinationName | None = None
        if self.routing_key is not None:
            try:
                self._key = DestinationName(self.routing_key, AMQP)
            except ValueError as exc:
                self._improperly_configured(f"routing_key {exc}")
        if self.content_mode not in MESSAGE_BUILDERS:
            self._improperly_configured(
                f"content_mode must be one of {sorted(MESSAGE_BUILDERS)}, not {self.content_mode!r}"
            )
        if not isinstance(self.mandatory, bool):
            self._improperly_configured("mandatory must be True or False")
        if isinstance(self.send_timeout, bool) or not (
            isinstance(self.send_timeout, int | float) and self.send_timeout > 0
        ):
            self._improperly_configured("send_timeout must be a positive number of seconds")
