"""A backend that writes each event, as structured CloudEvents JSON, to a stream."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..events import CloudEvent
from ..formats import to_structured_json
from .base import BaseBackend, Rejections


class ConsoleBackend(BaseBackend):
    """Write one JSON line per event to ``stream`` (standard output by default).

    Meant for development and demos, like Django's console mail backend.
    """

    def __init__(self, alias: str, *, stream: TextIO | None = None, **options: Any) -> None:
        super().__init__(alias, **options)
        self.stream = stream

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """Write one line per event, flush the stream once, and refuse none."""
        stream = self.stream or sys.stdout
        stream.writelines(to_structured_json(event).decode() + "\n" for event in events)
        stream.flush()
        return {}
