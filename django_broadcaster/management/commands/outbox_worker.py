"""``manage.py outbox_worker``: deliver outbox events until stopped."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import telemetry
from ...conf import get_settings
from ...outbox.models import OutboxEvent
from ...worker import Worker
from ...worker.gc_tuning import tune_for_worker
from ..arguments import seconds
from ..log_output import log_to_stderr
from ..migrated import require_migrated


class Command(BaseCommand):
    help = (
        "Deliver due outbox events to the configured backends and local handlers. "
        "Runs until SIGTERM or SIGINT, which finish and record the batch in hand; "
        "a second signal stops at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            metavar="N",
            help='Events claimed per batch (default: BROADCASTER["BATCH_SIZE"], 100).',
        )
        parser.add_argument(
            "--interval",
            type=seconds,
            metavar="SECONDS",
            help='Seconds to wait when nothing is due (default: BROADCASTER["POLL_INTERVAL"], 1).',
        )
        parser.add_argument(
            "--max-iterations",
            type=int,
            default=0,
            metavar="N",
            help="Stop after N claim cycles (default: 0, no limit).",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            metavar="PORT",
            help="Serve Prometheus metrics on this port (needs prometheus-client).",
        )
        parser.add_argument(
            "--metrics-address",
            default="0.0.0.0",
            metavar="ADDRESS",
            help="Address for --metrics-port (default: 0.0.0.0, every interface).",
        )
        parser.add_argument(
            "--burst",
            action="store_true",
            help="Deliver everything that is due, then exit 0.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _check_arguments(options)
        require_migrated(OutboxEvent, "outbox")
        config = get_settings()
        if options["batch_size"] is not None:
            config = replace(config, batch_size=options["batch_size"])
        if options["interval"] is not None:
            config = replace(config, poll_interval=timedelta(seconds=options["interval"]))
        log_to_stderr(options["verbosity"])
        if options["metrics_port"] is not None:
            telemetry.serve_metrics(options["metrics_port"], options["metrics_address"])
        worker = Worker(
            config=config,
            burst=options["burst"],
            max_iterations=options["max_iterations"],
            progress_interval=_seconds(config.progress_interval),
        )
        tune_for_worker()  # before the handlers: a second signal then finds run()'s cleanup
        worker.install_signal_handlers()
        stats = worker.run()
        if options["verbosity"]:
            self.stdout.write(
                f"Published {stats.published}, retried {stats.retried}, "
                f"deferred {stats.deferred}, failed {stats.failed}, expired {stats.expired} "
                f"in {stats.batches} batches."
            )


def _seconds(interval: timedelta | None) -> float:
    return 0.0 if interval is None else interval.total_seconds()


def _check_arguments(options: dict[str, Any]) -> None:
    if options["batch_size"] is not None and options["batch_size"] < 1:
        raise CommandError("--batch-size must be at least 1.")
    if options["max_iterations"] < 0:
        raise CommandError("--max-iterations must not be negative (0 means no limit).")
