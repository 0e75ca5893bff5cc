"""How redis-py reads a Redis URL: refuse one it would misread (see :mod:`..urls`)."""

from __future__ import annotations

from typing import Final

from ..base import masked
from ..urls import password_cut_problem, url_passwords

SCHEMES: Final = ("redis", "rediss", "unix")


def url_problem(url: str) -> str | None:
    """Return why redis-py would misread ``url`` or cannot read it; ``None`` when it reads it.

    The reason shows no part of a password. Needs redis-py.
    """
    from redis.connection import parse_url

    if not url.lower().startswith(tuple(f"{scheme}://" for scheme in SCHEMES)):
        return f"url must start with one of {list(SCHEMES)}"
    cut = password_cut_problem(url, "redis-py")
    if cut:
        return cut
    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        return f"redis-py cannot read url: {masked(str(exc), url_passwords(url))}"
    return None
