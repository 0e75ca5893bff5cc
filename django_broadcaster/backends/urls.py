"""Keep the passwords of broker URLs (Redis, AMQP) out of sight, whole.

The clients (redis-py, pika) parse a URL with urllib, which ends the user info and the host at
the first ``#``, ``/`` or ``?``. A password that holds one of them unencoded, as in
``redis://:S3cr#et99@cache``, is cut short there: the client sends a part of it, or reads that
part as the port, and takes the rest for the fragment, the path or the query.
:func:`password_cut_problem` refuses such a URL, and :func:`mask_url` masks the whole password
wherever the client would put its parts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import unquote

from .base import MASK

_QUERY_PASSWORD: Final = re.compile(r"(?i)(?<=[?&])password=([^&#]*)")
#: What ends a URL's user info and host for urllib, each with its percent-encoding.
_ENCODED: Final = {"#": "%23", "/": "%2F", "?": "%3F"}


def mask_url(url: str) -> str:
    """Return ``url`` with each part that may hold a password replaced by ``***``.

    These are the password of the user info, up to the ``@`` that ends it even where a client
    would cut it short (see the module docstring), the password of the query string, and the
    fragment.
    """
    start, end = _userinfo(url)
    colon = url.find(":", start, end)
    if colon != -1:
        url = f"{url[: colon + 1]}{MASK}{url[end:]}"
    url = _QUERY_PASSWORD.sub(f"password={MASK}", url)
    before, fragment, _ = url.partition("#")
    return f"{before}#{MASK}" if fragment else url


def url_passwords(url: str) -> set[str]:
    """Return the passwords of ``url``'s user info and query, as written and percent-decoded."""
    start, end = _userinfo(url)
    found = {url[start:end].partition(":")[2], *_QUERY_PASSWORD.findall(url)}
    return {form for text in found if text for form in (text, unquote(text))}


def _userinfo(url: str) -> tuple[int, int]:
    """Return where the user info that ``url`` means starts and ends (at its ``@``).

    An ``@`` after the end of the host, where a broker URL holds none (in the fragment, in the
    path unless it names a Unix socket, in a query parameter's name), ends the user info the URL
    means, which the client cut short. The span is empty when there is no user info.
    """
    start, end = url.find("://") + 3, _authority_end(url)
    fragment = url.find("#", end)
    stop = len(url) if fragment == -1 else fragment
    query = url.find("?", end, stop)
    socket_path = url.lower().startswith("unix:") and (start == end or "@" in url[start:end])
    at = max(
        -1 if fragment == -1 else url.rfind("@", fragment),
        -1 if socket_path else url.rfind("@", end, stop if query == -1 else query),
        -1 if query == -1 else _at_in_a_name(url, query + 1, stop),
    )
    if at == -1:
        at = url.rfind("@", start, end)
    return (start, at) if at != -1 else (start, start)


def _authority_end(url: str) -> int:
    start = url.find("://") + 3
    return min((i for i in (url.find(c, start) for c in _ENCODED) if i != -1), default=len(url))


def _at_in_a_name(url: str, start: int, stop: int) -> int:
    """Return where the last ``@`` of the first query parameter name holding one is, or -1."""
    for parameter in url[start:stop].split("&"):
        name = parameter.partition("=")[0]
        if "@" in name:
            return start + name.rindex("@")
        start += len(parameter) + 1
    return -1


def password_cut_problem(url: str, client: str) -> str | None:
    """Return why ``client`` would cut a password of ``url`` short, or ``None`` if it would not.

    The reason shows no part of the password, and says how to percent-encode it.
    """
    cut = _cut_at(url)
    if not cut:
        return None
    return (
        f"url holds {_listed([repr(c) for c in cut])} where {client} stops reading a "
        "password, so it would send a part of it, maybe to another server; percent-encode "
        f"{'it' if len(cut) == 1 else 'them'} as {_listed([_ENCODED[c] for c in cut])}"
    )


def _cut_at(url: str) -> list[str]:
    """Return the characters at which urllib would cut a password of ``url`` short, sorted."""
    start, end = _userinfo(url)
    if end > _authority_end(url):
        return sorted(_ENCODED.keys() & set(url[start:end]))
    return ["#"] if "#" in url else []  # a fragment: the end of a query's password, or junk


def _listed(items: Sequence[str]) -> str:
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)
