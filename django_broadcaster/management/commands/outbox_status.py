"""``manage.py outbox_status``: how the outbox is doing, for people and for monitoring."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf import get_settings
from ...fingerprints import FailureGroup
from ...outbox.failures import failure_groups
from ...outbox.health import FailureReason, OutboxStatus, outbox_status
from ...outbox.models import OutboxEvent
from ...routing import parse_routes
from ..arguments import seconds
from ..migrated import require_migrated


class Command(BaseCommand):
    help = (
        "Show the outbox's state: events by status, the lag (how long the oldest unfinished "
        "event has waited to reach every destination), each destination's backlog and lag, why "
        "pending events wait, and the most common failures. With --max-lag, exit with status 1 "
        "when the lag is over the limit (for health checks)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-lag",
            type=seconds,
            metavar="SECONDS",
            help="Exit with status 1 if the oldest unfinished event has waited longer than this.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object instead of text."
        )
        parser.add_argument(
            "--failures",
            action="store_true",
            help="List the failure groups of failed events, with the fingerprints that "
            "outbox_requeue --group takes, instead of the status.",
        )
        parser.add_argument(
            "--top",
            type=int,
            default=5,
            metavar="N",
            help="How many distinct waiting and failure reasons to list (default: 5).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["top"] < 0:
            raise CommandError("--top must not be negative.")
        require_migrated(OutboxEvent, "outbox")
        if options["failures"]:
            self.stdout.write(_failures(failure_groups(), as_json=options["json"]))
            return
        status = outbox_status(top=options["top"])
        routes = _routes()
        if options["json"]:
            self.stdout.write(json.dumps({**status.as_dict(), "routes": routes}, indent=2))
        else:
            self.stdout.write("\n\n".join([render(status), *_route_lines(routes)]))
        _check_lag(status, options["max_lag"])


def _check_lag(status: OutboxStatus, max_lag_s: float | None) -> None:
    lag = status.lag
    if max_lag_s is None or lag is None or lag.total_seconds() <= max_lag_s:
        return
    behind = ", ".join(
        f"{d.name} {d.lag.total_seconds():.1f} s"
        for d in status.destinations
        if d.lag is not None and d.lag.total_seconds() > max_lag_s
    )
    raise CommandError(
        f"Lag {lag.total_seconds():.1f} s is over --max-lag {max_lag_s:g} s"
        + (f" ({behind})" if behind else "")
        + ": are the workers running and keeping up, and the destinations up?"
    )


def render(status: OutboxStatus) -> str:
    """Return ``status`` as text for a terminal."""
    return "\n".join(
        [
            f"Outbox at {status.now:%Y-%m-%d %H:%M:%S %Z}",
            *_counts(status),
            _lag(status),
            "",
            *_destinations(status),
            "",
            *_reasons(
                "Why pending events wait (by last error):", status.waiting_reasons, "Waiting"
            ),
            "",
            *_reasons(
                "Top failure reasons (failed events by last error):",
                status.top_failures,
                "Failures",
            ),
            *_dead_letters(status),
        ]
    )


def _dead_letters(status: OutboxStatus) -> list[str]:
    """Return the dead-letter section, or nothing when no failure went to a dead letter."""
    if not status.dead_letters:
        return []
    width = max(len(f"{d.destination} -> {d.dead_letter}") for d in status.dead_letters)
    return [
        "",
        "Dead letters (failed events sent on), by destination:",
        f"  {'':<{width}} {'sent':>9} {'to send':>9} {'refused':>9}",
        *(
            f"  {f'{d.destination} -> {d.dead_letter}':<{width}} "
            f"{d.sent:>9,} {d.to_send:>9,} {d.refused:>9,}"
            for d in status.dead_letters
        ),
    ]


def _counts(status: OutboxStatus) -> list[str]:
    lines = [f"  {name:<10} {count:>9,}" for name, count in status.counts.items()]
    lines[0] += f"  ({status.due:,} due, {status.in_flight:,} in flight)"
    return lines


def _lag(status: OutboxStatus) -> str:
    if status.lag is None or status.waiting_since is None:
        return "Lag: none (no event is waiting)"
    return (
        f"Lag: {status.lag.total_seconds():.1f} s (the oldest unfinished event has waited "
        f"since {status.waiting_since:%Y-%m-%d %H:%M:%S})"
    )


def _destinations(status: OutboxStatus) -> list[str]:
    if not status.destinations:
        return ["Destinations: none configured."]
    width = max(len(d.name) for d in status.destinations)
    return [
        "Events not yet delivered, by destination:",
        f"  {'':<8} {'':<{width}} {'pending':>9} {'failed':>9} {'lag':>9}",
        *(
            f"  {d.kind:<8} {d.name:<{width}} {d.pending:>9,} {d.failed:>9,} {_seconds(d.lag):>9}"
            for d in status.destinations
        ),
    ]


def _routes() -> list[dict[str, Any]]:
    """Return the valid rules of ``ROUTES`` (``manage.py check`` reports the others)."""
    return [
        {
            "rule": r.number,
            "matches": r.condition,
            "backends": list(r.backends),
            "defaults": r.defaults,
        }
        for r in parse_routes(get_settings().routes)[0]
    ]


def _route_lines(routes: list[dict[str, Any]]) -> list[str]:
    """Return the routes section as one text, in a list; none without routes."""
    if not routes:
        return []  # as before routes existed: every event goes to every backend
    lines = [
        f"  {r['rule']:>3}. {r['matches']} -> {', '.join(r['backends']) or '(no backend)'}"
        + (f"  ({r['defaults']})" if r["defaults"] else "")
        for r in routes
    ]
    title = "Routes (the first that matches an event decides; unmatched: every backend):"
    return ["\n".join([title, *lines])]


def _failures(groups: list[FailureGroup], *, as_json: bool) -> str:
    """Return the failure groups as JSON, or as text with one line per group."""
    if as_json:
        return json.dumps([group.as_dict() for group in groups], indent=2)
    if not groups:
        return "No event has failed."
    width = max(len(g.kind.destination or "-") for g in groups)
    lines = [
        f"  {g.fingerprint}  {g.count:>7,}  {g.last_seen:%Y-%m-%d %H:%M:%S}  "
        f"{g.kind.destination or '-':<{width}}  {_shorten(_error(g), 120)}"
        for g in groups
    ]
    title = "Failure groups (replay one with: outbox_requeue --group FINGERPRINT --yes):"
    header = f"  {'fingerprint':<12}  {'events':>7}  {'last seen':<19}  {'where':<{width}}  error"
    return "\n".join([title, header, *lines])


def _error(group: FailureGroup) -> str:
    kind = group.kind
    return f"{kind.error_class}: {kind.message}" if kind.error_class else kind.message


def _seconds(lag: timedelta | None) -> str:
    return "-" if lag is None else f"{lag.total_seconds():.1f} s"


def _reasons(title: str, reasons: list[FailureReason], what: str) -> list[str]:
    if not reasons:
        return [f"{what}: none."]
    return [title, *(f"  {r.count:>7,}  {_shorten(r.reason)}" for r in reasons)]


def _shorten(text: str, limit: int = 200) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
