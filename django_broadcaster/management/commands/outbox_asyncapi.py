"""``manage.py outbox_asyncapi``: the AsyncAPI 3.0 document of what the backends send."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...asyncapi import document
from ...exceptions import BroadcasterImproperlyConfigured


class Command(BaseCommand):
    help = (
        "Write the AsyncAPI 3.0 document of the channels the configured backends send to, and "
        "the events that reach each by ROUTES. Title, version, description and the typed event "
        'classes come from BROADCASTER["ASYNCAPI"].'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output", metavar="FILE", help="Write the document to FILE instead of stdout."
        )
        parser.add_argument(
            "--format",
            choices=("json", "yaml"),
            default="json",
            help="json (default) or yaml (needs PyYAML).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text = _render(document(), options["format"])
        except BroadcasterImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as file:
                file.write(text)
        else:
            self.stdout.write(text, ending="")


def _render(found: dict[str, Any], form: str) -> str:
    if form == "json":
        return json.dumps(found, indent=2) + "\n"
    try:
        import yaml
    except ImportError as exc:
        raise CommandError("--format yaml needs PyYAML: pip install PyYAML.") from exc
    return str(yaml.safe_dump(found, sort_keys=False, allow_unicode=True))
