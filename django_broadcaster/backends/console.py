"""A backend that writes each event, as structured CloudEvents JSON, to a stream."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..events import CloudEvent
from ..formats import to_structured_json
from .base import BaseBackend


class ConsoleBackend(BaseBackend):
    """Write one JSON line per event to ``stream`` (standard output by default).

    Meant for development and demos, like Django's console mail backend.
    """

    def __init__(self, alias: str, *, stream: TextIO | None = None, **options: Any) -> None:
        super().__init__(alias, **options)
        self.stream = stream

    def send(self, event: CloudEvent) -> None:
        """Write ``event`` and flush the stream."""
        stream = self.stream or sys.stdout
        stream.write(to_structured_json(event).decode() + "\n")
        stream.flush()
