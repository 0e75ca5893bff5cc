"""``manage.py consume_kafka``: handle the events of a Kafka topic once each, until stopped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...backends.base import BaseBackend
from ...backends.kafka.base import BaseKafkaBackend
from ...consumers.inbox import InboxEntry
from ...consumers.kafka import KafkaTopicConsumer
from ..migrated import require_migrated
from ._consuming import add_common_arguments, backend_options, build, common_options, run


class Command(BaseCommand):
    help = (
        "Read a Kafka topic in a consumer group and call the handlers of consumer_registry once "
        "per event, recording each in the inbox; offsets are committed after each transaction. "
        "SIGTERM or SIGINT finishes the message in hand; a second signal stops at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--topic", required=True, help="The topic to read.")
        parser.add_argument(
            "--bootstrap-servers",
            help="Comma-separated brokers (default: those of the Kafka backend in BROADCASTER).",
        )
        parser.add_argument(
            "--consumer-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A kafka-python KafkaConsumer option; VALUE is read as JSON when it parses "
            "(session_timeout_ms=6000, security_protocol=SSL). Repeat for several.",
        )
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        topic = options["topic"]
        require_migrated(InboxEntry, "inbox")
        listed = _listed(options["bootstrap_servers"] or _configured_servers())
        servers = {server.lower() for server in listed}
        consumer = build(
            KafkaTopicConsumer,
            listed,
            topic,
            options["group"],
            consumer_options=_parsed(options["consumer_option"]),
            **common_options(options),
        )

        def writes_there(backend: BaseBackend) -> bool:
            return (
                isinstance(backend, BaseKafkaBackend)
                and backend.topic == topic
                and not servers.isdisjoint(s.lower() for s in _listed(backend.bootstrap_servers))
            )

        run(self, consumer, f"the Kafka topic {topic!r}", writes_there, options["verbosity"])


def _configured_servers() -> str | list[str]:
    servers = backend_options(BaseKafkaBackend, "--bootstrap-servers").get("bootstrap_servers")
    if not servers:
        raise CommandError("Give --bootstrap-servers: the Kafka backend names no brokers.")
    return servers if isinstance(servers, str) else list(servers)


def _listed(servers: str | Sequence[str]) -> list[str]:
    """Return each broker's ``host:port``, from a comma-separated string or a list."""
    listed = servers.split(",") if isinstance(servers, str) else servers
    return [server.strip() for server in listed if server.strip()]


def _parsed(pairs: list[str]) -> dict[str, Any]:
    options = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key:
            # Not echoed: a ':' typed for '=' would print a password.
            raise CommandError("--consumer-option takes KEY=VALUE; one of them has no '='.")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options
