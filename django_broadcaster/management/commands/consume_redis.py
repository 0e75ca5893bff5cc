"""``manage.py consume_redis``: handle the events of a Redis stream once each, until stopped."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...backends.base import BaseBackend
from ...backends.redis import RedisStreamBackend
from ...consumers.inbox import InboxEntry
from ...consumers.redis import RedisStreamConsumer
from ..arguments import broker_url, seconds
from ..migrated import require_migrated
from ._consuming import add_common_arguments, backend_options, build, common_options, run


class Command(BaseCommand):
    help = (
        "Read a Redis stream in a consumer group and call the handlers of consumer_registry once "
        "per event, recording each in the inbox. SIGTERM or SIGINT finishes the message in hand; "
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
            type=broker_url("redis-py"),
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
        stream, common = options["stream"], common_options(options)
        require_migrated(InboxEntry, "inbox")
        client = _client(options["url"])
        try:
            consumer = build(
                RedisStreamConsumer,
                client,
                stream,
                options["group"],
                options["consumer"],
                claim_idle=timedelta(seconds=options["claim_idle"]),
                **common,
            )
            server = _location(client.connection_pool.connection_kwargs)

            def writes_there(backend: BaseBackend) -> bool:
                return (
                    isinstance(backend, RedisStreamBackend)
                    and backend.stream_name == stream
                    and _backend_location(backend) == server
                )

            run(self, consumer, f"the Redis stream {stream!r}", writes_there, options["verbosity"])
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


def _backend_location(backend: RedisStreamBackend) -> tuple[str, int, int]:
    from redis.connection import parse_url

    if backend.url:
        return _location(parse_url(backend.url))  # type: ignore[no-untyped-call]
    return _location({"host": backend.host, "port": backend.port, "db": backend.db})


def _location(address: Mapping[str, Any]) -> tuple[str, int, int]:
    """Return the server and database of a redis-py address: ``(host or socket, port, db)``."""
    if address.get("path"):
        return (str(address["path"]), 0, int(address.get("db") or 0))
    host = str(address.get("host") or "localhost").lower()
    return (host, int(address.get("port") or 6379), int(address.get("db") or 0))
