"""What the commands that act on chosen failures share: ``--group``, ``--since``/``--until``
and the ``--yes``/``--dry-run`` confirmation, with the same meaning everywhere."""

from __future__ import annotations

from argparse import ArgumentTypeError
from collections.abc import Mapping
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ..fingerprints import FINGERPRINT_LENGTH, is_fingerprint
from .arguments import moment


def fingerprint(text: str) -> str:
    """Return ``text``, a failure group's fingerprint; raise ``ArgumentTypeError`` if it is not."""
    if not is_fingerprint(text):
        raise ArgumentTypeError(
            f"{text!r} is not a failure group's fingerprint ({FINGERPRINT_LENGTH} hex digits)"
        )
    return text


def add_selection_arguments(parser: CommandParser, *, when: str, doing: str) -> None:
    """Add ``--group``, ``--since``/``--until`` (on the moment ``when`` names) and the
    confirmation, ``--yes`` (to do ``doing``) or ``--dry-run``."""
    parser.add_argument(
        "--group", type=fingerprint, metavar="FINGERPRINT", help="Only this failure group."
    )
    parser.add_argument("--since", type=moment, metavar="WHEN", help=f"Only {when} at or after.")
    parser.add_argument("--until", type=moment, metavar="WHEN", help=f"Only {when} before.")
    confirm = parser.add_mutually_exclusive_group()
    confirm.add_argument("--yes", action="store_true", help=f"{doing.capitalize()} them.")
    confirm.add_argument("--dry-run", action="store_true", help="Only count them; change nothing.")


def time_range(options: Mapping[str, Any], field: str) -> dict[str, Any]:
    """Return the filters ``--since`` and ``--until`` make on ``field``; raise ``CommandError``
    if the range is empty."""
    since, until = options["since"], options["until"]
    if since and until and since >= until:
        raise CommandError(f"--since ({since:%Y-%m-%d %H:%M}) must be before --until.")
    chosen = {f"{field}__gte": since, f"{field}__lt": until}
    return {name: value for name, value in chosen.items() if value}


def confirmed(command: BaseCommand, count: int, what: str, options: Mapping[str, Any]) -> bool:
    """Print how many ``what`` match; return whether to go on (``--yes``, and some match).

    Raises ``CommandError`` (exit status 1) when some match and neither ``--yes`` nor
    ``--dry-run`` was given, so that a script that forgot ``--yes`` does not pass for done.
    """
    command.stdout.write(f"{count} {what} match.")
    if count == 0 or options["dry_run"]:
        return False
    if not options["yes"]:
        raise CommandError(
            f"Nothing changed: pass --yes to act on these {count} {what}, "
            "or --dry-run to only count them."
        )
    return True
