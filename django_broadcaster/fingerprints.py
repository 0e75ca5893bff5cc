"""Failure fingerprints: which failures are "the same problem", so they can be replayed together.

A failure is told by where it happened (a destination: a backend alias or ``handler:`` name on
the outbox side, an event type on the inbox side), the class of the error, and its message with
the values taken out: numbers, UUIDs, hex ids, quoted values and timestamps become placeholders,
so "order 123 missing" and "order 456 missing" are one group. Errors are recorded as
``"ErrorClass: message"`` (``"unavailable: ..."`` for an outage) by the worker and the consumers;
the class is the text before the first colon. The admin, ``outbox_status``, ``outbox_requeue``
and ``consume_replay`` all group with :func:`failure_kind`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

#: How many hex digits of the digest make a fingerprint: short enough to type.
FINGERPRINT_LENGTH: Final = 12

_CLASS = re.compile(r"[A-Za-z_][\w.]*")
# Applied in order: quotes first, so that a quoted number is one value, not two.
_PLACEHOLDERS: Final = [
    (re.compile(r"""(?<!\w)'[^'\n]*'(?!\w)|(?<!\w)"[^"\n]*"(?!\w)"""), "<str>"),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
            r"(?![\w:])"
        ),
        "<time>",
    ),
    (re.compile(r"\b[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}\b", re.IGNORECASE), "<uuid>"),
    # A hex id has a digit and a letter, so that words ("deadbeef") and numbers stay apart.
    (re.compile(r"\b0x[0-9a-f]+\b|\b(?=[a-f]*\d)(?=\d*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "<n>"),
]


@dataclass(frozen=True)
class FailureKind:
    """What makes failures one group: where, the error's class, the message without values."""

    destination: str
    error_class: str
    message: str

    @property
    def fingerprint(self) -> str:
        """Return the group's id: the first hex digits of a SHA-256 of its three parts."""
        text = "\x00".join([self.destination, self.error_class, self.message])
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[
            :FINGERPRINT_LENGTH
        ]


@dataclass(frozen=True)
class Failure:
    """One failure: its group, the row it happened to, the error text and when."""

    kind: FailureKind
    key: str  # the id of the row that failed, as text
    error: str
    at: datetime


@dataclass(frozen=True)
class FailureGroup:
    """The failures of one fingerprint: how many, first and last seen, and the latest one."""

    kind: FailureKind
    count: int
    first_seen: datetime
    last_seen: datetime
    example: Failure

    @property
    def fingerprint(self) -> str:
        """Return the group's fingerprint (what ``outbox_requeue --group`` takes)."""
        return self.kind.fingerprint

    def as_dict(self) -> dict[str, Any]:
        """Return the group as JSON-ready values."""
        return {
            "fingerprint": self.fingerprint,
            "destination": self.kind.destination,
            "error_class": self.kind.error_class,
            "message": self.kind.message,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "example": self.example.key,
            "example_error": self.example.error,
        }


def group(failures: Iterable[Failure]) -> list[FailureGroup]:
    """Return ``failures`` in groups by kind, the largest first, then the latest seen."""
    found: dict[FailureKind, list[Failure]] = {}
    for failure in failures:
        found.setdefault(failure.kind, []).append(failure)
    groups = [
        FailureGroup(
            kind,
            len(failures),
            min(f.at for f in failures),
            max(f.at for f in failures),
            max(failures, key=lambda f: f.at),
        )
        for kind, failures in found.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, -g.last_seen.timestamp(), g.fingerprint))


def failure_kind(destination: str, error: str) -> FailureKind:
    """Return the group of ``error`` (``"ErrorClass: message"``) recorded at ``destination``."""
    kind = error_class(error)
    message = error.split(":", 1)[1] if kind else error
    return FailureKind(destination, kind, normalise(message))


def error_class(error: str) -> str:
    """Return the class an error text names before its first colon; ``""`` if it names none."""
    head, colon, _ = error.partition(":")
    head = head.strip()
    return head if colon and _CLASS.fullmatch(head) else ""


def normalise(message: str) -> str:
    """Return ``message`` with its values replaced by placeholders and its spaces collapsed.

    Values: quoted text (``<str>``), timestamps and dates (``<time>``), UUIDs (``<uuid>``), hex
    ids of 8 digits or more, or with ``0x`` (``<hex>``), and numbers (``<n>``).
    """
    for pattern, placeholder in _PLACEHOLDERS:
        message = pattern.sub(placeholder, message)
    return " ".join(message.split())


def is_fingerprint(text: str) -> bool:
    """Return whether ``text`` has the form of a fingerprint (hex digits, full length)."""
    return re.fullmatch(rf"[0-9a-f]{{{FINGERPRINT_LENGTH}}}", text) is not None
