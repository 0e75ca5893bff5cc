"""What the consumer commands share: options, settings lookup and the run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from ...backends.base import BaseBackend
from ...checks import own_events_warnings
from ...conf import get_settings
from ...consumers.base import BaseConsumer
from ...exceptions import BroadcasterImproperlyConfigured
from ...registry import EventRegistry
from ...retry import RetryPolicy
from ..arguments import seconds
from ..log_output import log_to_stderr


def add_common_arguments(parser: CommandParser, *, group: bool = True) -> None:
    """Add the options every command takes: ``--registry``, ``--burst`` and more.

    ``group`` adds ``--group``, for the transports that have consumer groups.
    """
    if group:
        parser.add_argument("--group", required=True, help="The consumer group to join.")
    add_registry_argument(parser)
    parser.add_argument(
        "--batch-size", type=int, default=100, metavar="N", help="Messages per fetch (100)."
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        metavar="N",
        help="Attempts at an event whose handlers fail before it is a dead letter (5).",
    )
    parser.add_argument(
        "--retry-delay",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="Wait after the first failed attempt; it doubles with each failure, up to 30 s (1).",
    )
    parser.add_argument(
        "--burst",
        action="store_true",
        help="Exit 0 once nothing new arrives for a moment, instead of waiting for more.",
    )


def common_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return the keyword arguments of :class:`BaseConsumer` and ``batch_size``; check them.

    Raises ``CommandError`` for a value out of range or a ``--registry`` that is not one.
    """
    if options["batch_size"] < 1 or options["max_attempts"] < 1:
        raise CommandError("--batch-size and --max-attempts must be at least 1.")
    delay = timedelta(seconds=options["retry_delay"])
    policy = RetryPolicy(options["max_attempts"], delay, max(delay, timedelta(seconds=30)))
    return {
        "batch_size": options["batch_size"],
        "policy": policy,
        "burst": options["burst"],
        "registry": registry_option(options["registry"]),
    }


def build(consumer_class: Callable[..., BaseConsumer], *args: Any, **kwargs: Any) -> BaseConsumer:
    """Return ``consumer_class(*args, **kwargs)``; raise ``CommandError`` if misconfigured."""
    try:
        return consumer_class(*args, **kwargs)
    except BroadcasterImproperlyConfigured as exc:
        raise CommandError(str(exc)) from exc


def backend_options(backend_class: type, name: str) -> Mapping[str, Any]:
    """Return the ``OPTIONS`` of the one configured backend of ``backend_class``.

    Lets a project that publishes and consumes with the same broker configure it once. Raises
    ``CommandError``, naming the command-line option ``name`` to use instead, when there is no
    such backend or more than one.
    """
    found = [
        config.options
        for config in get_settings().backends.values()
        if issubclass(import_string(config.backend), backend_class)
    ]
    if len(found) != 1:
        raise CommandError(
            f'Give {name}: BROADCASTER["BACKENDS"] has {len(found)} '
            f"{backend_class.__name__} backends, not exactly one to take it from."
        )
    return found[0]


def run(
    command: BaseCommand,
    consumer: BaseConsumer,
    reads: str,
    writes_there: Callable[[BaseBackend], bool],
    verbosity: int,
) -> None:
    """Run ``consumer`` until stopped by a signal (or idle in burst mode); print the totals.

    First print the warnings of :func:`~django_broadcaster.checks.own_events_warnings` for what
    the consumer ``reads`` and the backends that, says ``writes_there``, write it.
    """
    for warning in own_events_warnings(reads, writes_there):
        command.stderr.write(str(warning), command.style.WARNING)
    log_to_stderr(verbosity)
    consumer.install_signal_handlers()
    stats = consumer.run()
    if verbosity:
        command.stdout.write(f"{str(stats).capitalize()}.")


def add_registry_argument(parser: CommandParser) -> None:
    """Add ``--registry``, read by :func:`registry_option`: the consumers' and the replay's."""
    parser.add_argument(
        "--registry",
        metavar="DOTTED_PATH",
        help="The EventRegistry whose handlers get the events "
        "(default: django_broadcaster.registry.consumer_registry).",
    )


def registry_option(path: str | None) -> EventRegistry | None:
    """Return the registry that ``--registry`` names (``None``: not given); raise
    ``CommandError`` if it names none."""
    if path is None:
        return None
    try:
        registry = import_string(path)
    except ImportError as exc:
        raise CommandError(f"--registry: cannot import {path!r} ({exc}).") from exc
    if not isinstance(registry, EventRegistry):
        raise CommandError(f"--registry: {path!r} is not an EventRegistry.")
    return registry
