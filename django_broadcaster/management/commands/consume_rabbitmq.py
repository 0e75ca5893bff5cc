"""``manage.py consume_rabbitmq``: handle the events of a RabbitMQ queue once each, till stopped."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...backends.base import BaseBackend
from ...backends.rabbitmq import RabbitMQBackend
from ...backends.urls import mask_url
from ...consumers.inbox import InboxEntry
from ...consumers.rabbitmq import RabbitMQQueueConsumer
from ..arguments import broker_url
from ..migrated import require_migrated
from ._consuming import add_common_arguments, backend_options, build, common_options, run


class Command(BaseCommand):
    help = (
        "Read a RabbitMQ queue and call the handlers of consumer_registry once per event, "
        "recording each in the inbox; messages are acknowledged after each transaction. The "
        "queue is declared (durable) and bound to the exchange unless --no-declare is given. "
        "SIGTERM or SIGINT finishes the message in hand; a second signal stops at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", required=True, help="The queue to read.")
        parser.add_argument(
            "--url",
            type=broker_url("pika"),
            help="The broker, amqp://user:password@host:port/vhost (default: the url of the "
            "RabbitMQ backend in BROADCASTER).",
        )
        parser.add_argument(
            "--exchange",
            default="amq.topic",
            help="The exchange to bind the queue to (amq.topic); one not named amq.* is "
            "declared as a durable topic exchange.",
        )
        parser.add_argument(
            "--binding-key",
            action="append",
            metavar="KEY",
            help="A routing-key pattern to bind with, such as 'shop.order.*' (default '#': every "
            "event). Repeat for several.",
        )
        parser.add_argument(
            "--no-declare",
            dest="declare",
            action="store_false",
            help="Declare and bind nothing: the queue must exist.",
        )
        parser.add_argument(
            "--prefetch",
            type=int,
            metavar="N",
            help="Unacknowledged messages the broker may send ahead (twice --batch-size).",
        )
        add_common_arguments(parser, group=False)

    def handle(self, *args: Any, **options: Any) -> None:
        queue, exchange = options["queue"], options["exchange"]
        require_migrated(InboxEntry, "inbox")
        url = options["url"] or _configured_url()
        consumer = build(
            RabbitMQQueueConsumer,
            url,
            queue,
            exchange=exchange,
            binding_keys=options["binding_key"] or ["#"],
            declare=options["declare"],
            prefetch=options["prefetch"],
            **common_options(options),
        )

        def writes_there(backend: BaseBackend) -> bool:
            return isinstance(backend, RabbitMQBackend) and backend.exchange == exchange

        reads = f"the RabbitMQ queue {queue!r} on {mask_url(url)}"
        run(self, consumer, reads, writes_there, options["verbosity"])


def _configured_url() -> str:
    url: str = backend_options(RabbitMQBackend, "--url")["url"]
    return url
