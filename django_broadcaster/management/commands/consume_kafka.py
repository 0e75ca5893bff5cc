"""``manage.py consume_kafka``: handle the events of a Kafka topic once each, until stopped."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...backends.kafka.base import BaseKafkaBackend
from ...consumers.kafka import KafkaTopicConsumer
from ...exceptions import BroadcasterImproperlyConfigured
from ._consuming import add_common_arguments, backend_options, common_options, run


class Command(BaseCommand):
    help = (
        "Read a Kafka topic in a consumer group and call the registered handlers once per "
        "event, recording each in the inbox; offsets are committed after each transaction. "
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
        servers = options["bootstrap_servers"] or _configured_servers()
        try:
            consumer = KafkaTopicConsumer(
                servers.split(",") if isinstance(servers, str) else servers,
                options["topic"],
                options["group"],
                consumer_options=_parsed(options["consumer_option"]),
                **common_options(options),
            )
        except BroadcasterImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        run(consumer, self.stdout, options["verbosity"])


def _configured_servers() -> str | list[str]:
    servers = backend_options(BaseKafkaBackend, "--bootstrap-servers").get("bootstrap_servers")
    if not servers:
        raise CommandError("Give --bootstrap-servers: the Kafka backend names no brokers.")
    return servers if isinstance(servers, str) else list(servers)


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
