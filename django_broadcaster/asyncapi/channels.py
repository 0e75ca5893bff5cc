"""The AsyncAPI channel, server and bindings of one configured backend, read from its options.

A Kafka topic, a Redis stream, a RabbitMQ routing key (on its exchange) or a webhook URL's path
is the channel's address; a template's fields (``events.{type}``) are its parameters, and a
callable leaves the address unknown (``null``), as AsyncAPI allows for names chosen at run time.
Servers never show a password. Other backends (locmem, console, a project's own) have no channel
another service could read, so they are left out.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from ..backends.base import BaseBackend
from ..backends.kafka.base import BaseKafkaBackend
from ..backends.rabbitmq import RabbitMQBackend
from ..backends.redis import RedisStreamBackend
from ..backends.webhook import WebhookBackend

#: What each template field stands for, as a channel parameter's description.
FIELD_TEXT: Final = {
    "type": "the event's type",
    "source": "the event's source",
    "source_host": "the host of the event's source URI",
    "subject": "the event's subject",
}
#: The type of RabbitMQ's predeclared exchanges, by name.
AMQ_EXCHANGES: Final = {f"amq.{kind}": kind for kind in ("topic", "direct", "fanout", "headers")}


@dataclass(frozen=True)
class Channel:
    """One backend's channel: its kind, content mode, address and what goes with them."""

    kind: str  #: ``kafka``, ``redis``, ``amqp`` or ``http``
    mode: str  #: ``binary``, ``structured`` or ``batched``
    address: str | None
    description: str
    server: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    bindings: dict[str, Any] = field(default_factory=dict)
    operation_bindings: dict[str, Any] = field(default_factory=dict)


def describe(backend: BaseBackend) -> Channel | None:
    """Return the channel ``backend`` sends to, or ``None`` for a backend with none to show."""
    for kind, describer in _DESCRIBERS:
        if isinstance(backend, kind):
            return describer(backend)
    return None


def _kafka(backend: BaseKafkaBackend) -> Channel:
    servers = backend.bootstrap_servers
    first = servers.split(",")[0] if isinstance(servers, str) else servers[0]
    address, parameters, how = _address(backend.topic, "topic")
    return Channel(
        kind="kafka",
        mode=backend.content_mode,
        address=address,
        description=f"The Kafka {how}.",
        server={"host": first.strip(), "protocol": "kafka"},
        parameters=parameters,
    )


def _redis(backend: RedisStreamBackend) -> Channel:
    if backend.url is not None:
        parts = urlsplit(backend.url)
        server = {"host": _host(parts.hostname or "localhost", parts.port), "protocol": "redis"}
    else:
        server = {"host": _host(backend.host, backend.port), "protocol": "redis"}
    address, parameters, how = _address(backend.stream_name, "stream")
    return Channel(
        kind="redis",
        mode="structured",
        address=address,
        description=f"The Redis {how}: one XADD entry per event.",
        server=server,
        parameters=parameters,
    )


def _rabbitmq(backend: RabbitMQBackend) -> Channel:
    parts = urlsplit(backend.url)
    server = {"host": _host(parts.hostname or "localhost", parts.port), "protocol": parts.scheme}
    if parts.path not in ("", "/"):
        server["pathname"] = parts.path
    key = backend.routing_key if backend.routing_key is not None else "{type}"
    address, parameters, how = _address(key, "routing key")
    exchange: dict[str, Any] = {"name": backend.exchange, "durable": True}
    if backend.exchange in AMQ_EXCHANGES:
        exchange["type"] = AMQ_EXCHANGES[backend.exchange]
    return Channel(
        kind="amqp",
        mode=backend.content_mode,
        address=address,
        description=f"The {how} on the exchange {backend.exchange!r}: persistent messages.",
        server=server,
        parameters=parameters,
        bindings={"amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": "0.3.0"}},
        operation_bindings={
            "amqp": {"deliveryMode": 2, "mandatory": backend.mandatory, "bindingVersion": "0.3.0"}
        },
    )


def _webhook(backend: WebhookBackend) -> Channel:
    parts = urlsplit(backend.url)
    server = {"host": _host(parts.hostname or "", parts.port), "protocol": parts.scheme}
    return Channel(
        kind="http",
        mode=backend.mode,
        address=parts.path or "/",
        description="Signed webhook requests (Standard Webhooks), each a POST.",
        server=server,
        operation_bindings={"http": {"method": "POST", "bindingVersion": "0.3.0"}},
    )


def _address(value: str | Callable[..., Any], what: str) -> tuple[str | None, dict[str, Any], str]:
    """Return the address, the parameters and a description of the name ``value`` gives."""
    if callable(value):
        name = f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', value)}"
        return None, {}, f"{what} that {name} names for each event"
    fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    parameters = {
        name: {"description": FIELD_TEXT.get(name) or f"the event's {name[4:]} extension"}
        for name in fields
    }
    how = f"{what} named from the event's attributes" if fields else f"{what} {value!r}"
    return value, parameters, how


def _host(hostname: str, port: int | None) -> str:
    return hostname if port is None else f"{hostname}:{port}"


_DESCRIBERS: Final[Sequence[tuple[type, Callable[[Any], Channel]]]] = (
    (BaseKafkaBackend, _kafka),
    (RedisStreamBackend, _redis),
    (RabbitMQBackend, _rabbitmq),
    (WebhookBackend, _webhook),
)
