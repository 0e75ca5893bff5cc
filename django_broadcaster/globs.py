"""Event-type patterns: an exact type, or a glob whose only wildcard is ``*`` (any text).

Only ``*`` is special so that two patterns can be compared exactly: whether one covers the
other (every type it matches, the other matches too) and whether they overlap (some type
matches both). The routes' system checks use both to find rules that can never match.
"""

from __future__ import annotations

import re
from functools import cache

#: Stands for "any text" when a pattern is read as a type: no CloudEvents type holds it.
_ANY: str = "\x00"


def is_glob(pattern: str) -> bool:
    """Return whether ``pattern`` holds a wildcard."""
    return "*" in pattern


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def matches(pattern: str, event_type: str) -> bool:
    """Return whether ``event_type`` matches ``pattern`` (case-sensitive, whole type)."""
    if not is_glob(pattern):
        return pattern == event_type
    return _compiled(pattern).fullmatch(event_type) is not None


def covers(pattern: str, other: str) -> bool:
    """Return whether every type ``other`` matches, ``pattern`` matches too.

    ``other`` read as a type, each ``*`` being text no literal matches, must match ``pattern``:
    only a ``*`` of ``pattern`` can then absorb it, so any text in its place matches too.
    """
    return matches(pattern, other.replace("*", _ANY))


def overlap(pattern: str, other: str) -> bool:
    """Return whether some type matches both patterns.

    With a ``*`` in each, that holds when their literal beginnings agree (one starts the other)
    and so do their endings: the text between can be put in the other's ``*``.
    """
    if not is_glob(pattern) or not is_glob(other):
        return matches(pattern, other) or matches(other, pattern)
    start, end = pattern.split("*"), other.split("*")
    prefix, other_prefix = start[0], end[0]
    suffix, other_suffix = start[-1], end[-1]
    return (prefix.startswith(other_prefix) or other_prefix.startswith(prefix)) and (
        suffix.endswith(other_suffix) or other_suffix.endswith(suffix)
    )
