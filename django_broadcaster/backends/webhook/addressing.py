"""Where a webhook backend POSTs each event: its ``url``, fixed, a template or a callable.

A template fills in only the path and the query: the scheme and the host are the literal text
before its first field, and each field's value is percent-encoded (:data:`..naming.URL`), so no
event can send a request to another host, add a path segment or a query parameter. A callable
is the project's own code and returns the whole URL, on any ``http``/``https`` host; the
backend keeps a connection pool per host (:class:`Pools`), for as many hosts as
:data:`MAX_POOLS`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

from ...events import CloudEvent
from ..naming import URL, DestinationName

SCHEMES: Final = ("http", "https")
#: The most hosts a backend keeps connections to; past it, the least recently opened goes.
MAX_POOLS: Final = 16


@dataclass(frozen=True)
class Target:
    """One URL to POST to: its origin (``scheme://host:port``) and the request's path and query."""

    origin: str
    path: str
    shown: str  #: the URL with its query masked, for messages


class Addresses:
    """Resolve the URL of each event for one backend.

    Build it from the ``url`` option; it raises ``ValueError`` saying what is wrong. ``fixed``
    is the one target when the URL does not depend on the event (``None`` otherwise).
    """

    def __init__(self, url: object) -> None:
        if isinstance(url, str) and "#" in url:
            raise ValueError("url must not have a fragment: it is never sent")
        self._name = DestinationName(url, URL)
        self.fixed: Target | None = None
        self._origin: str | None = None  # a template's, fixed
        if self._name.fixed is not None:
            self.fixed = _target(self._name.fixed)
        elif not callable(url):
            self._origin = _template_origin(self._name.prefix, str(url))
        self.shown = self.fixed.shown if self.fixed else _shown(url)
        #: Literal query text of the option, masked wherever it is shown (it may hold a token).
        self.secrets = frozenset(_literal_query(url)) - {""}

    def target(self, event: CloudEvent) -> Target:
        """Return where ``event`` goes; raise ``ValueError`` if its URL cannot be made."""
        if self.fixed is not None:
            return self.fixed
        url = self._name.resolve(event)[0]
        if self._origin is not None:  # a template: its origin is fixed, its path follows
            return _parts_target(urlsplit(url), self._origin)
        return _target(url)


def _target(url: str) -> Target:
    """Return the target of a whole URL; raise ``ValueError`` if it is not one to POST to."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials: give them in headers")
    return _parts_target(parts, f"{parts.scheme}://{parts.netloc}")


def _template_origin(prefix: str, template: str) -> str:
    """Return the origin a template fixes in ``prefix``, its text before the first field."""
    try:
        origin = _target(prefix).origin
    except ValueError as exc:
        origin, problem = "", str(exc)
    else:
        problem = "must fix the scheme and the host"
    if not origin or not prefix[len(origin) :].startswith(("/", "?")):
        raise ValueError(
            f"template {template!r} {problem}: only the path and the query may have fields, "
            "after the '/' that starts the path"
        )
    return origin


def _parts_target(parts: SplitResult, origin: str) -> Target:
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(origin, path, f"{origin}{parts.path}" + ("?***" if parts.query else ""))


def _shown(url: object) -> str:
    if isinstance(url, str):
        path, mark, _ = url.partition("?")
        return path + ("?***" if mark else "")
    name = getattr(url, "__qualname__", type(url).__qualname__)
    return f"<{getattr(url, '__module__', '?')}.{name}>"


def _literal_query(url: object) -> list[str]:
    if not isinstance(url, str) or "?" not in url:
        return []
    literals = url.partition("?")[2].replace("{", "}").split("}")[::2]  # the text between fields
    # A pair with a value may be a token; a name alone ("tenant=" before a field) is not.
    return [pair for text in literals for pair in text.split("&") if pair.partition("=")[2]]


class Pools:
    """Connection pools by origin, each made by ``make(origin)`` on first use; thread-safe.

    Past :data:`MAX_POOLS` origins the oldest pool is closed: its connections in use end with
    their requests. :meth:`close` closes them all and is safe to call twice.
    """

    def __init__(self, make: Callable[[str], Any]) -> None:
        self._make = make
        self._pools: dict[str, Any] = {}
        self._lock = threading.Lock()  # the senders may meet a new origin at once

    def get(self, origin: str) -> Any:
        """Return the pool of ``origin``."""
        with self._lock:
            pool = self._pools.get(origin)
            if pool is None:
                if len(self._pools) >= MAX_POOLS:
                    self._pools.pop(next(iter(self._pools))).close()
                pool = self._pools[origin] = self._make(origin)
            return pool

    def close(self) -> None:
        """Close every pool."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
