"""``manage.py consume_redis``: handle the events of a Redis stream once each, until stopped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...backends.redis import RedisStreamBackend
from ...consumers.redis import RedisStreamConsumer
from ..arguments import seconds
from ._consuming import add_common_arguments, backend_options, common_options, run


class Command(BaseCommand):
    help = (
        "Read a Redis stream in a consumer group and call the registered handlers once per "
        "event, recording each in the inbox. SIGTERM or SIGINT finishes the message in hand; "
        "a second signal stops at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stream", required=True, help="The stream to read.")
        parser.add_argument(
            "--consumer",
            help="This consumer's name in the group (default: host-pid). Keep it across "
            "restarts to resume its pending entries at once.",
        )
        parser.add_argument(
            "--url",
            help="The Redis URL (default: that of the one RedisStreamBackend in BROADCASTER).",
        )
        parser.add_argument(
            "--claim-idle",
            type=seconds,
            default=60.0,
            metavar="SECONDS",
            help="Claim entries other consumers have left pending this long (60).",
        )
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        client = _client(options["url"])
        consumer = RedisStreamConsumer(
            client,
            options["stream"],
            options["group"],
            options["consumer"],
            claim_idle=timedelta(seconds=options["claim_idle"]),
            **common_options(options),
        )
        try:
            run(consumer, self.stdout, options["verbosity"])
        finally:
            client.close()


def _client(url: str | None) -> Any:
    """Return a client on ``url``, or on the configured backend's server."""
    import redis

    timeouts = {"socket_timeout": 10.0, "socket_connect_timeout": 5.0}  # above the 1 s block
    if url:
        return redis.Redis.from_url(url, **timeouts)
    options = backend_options(RedisStreamBackend, "--url")
    client_options = {**options.get("client_options", {}), **timeouts}
    if options.get("url"):
        return redis.Redis.from_url(options["url"], **client_options)
    address = {key: options[key] for key in ("host", "port", "db", "password") if key in options}
    return redis.Redis(**address, **client_options)
