"""Standard Webhooks signatures: what the webhook backend signs and the receiver verifies.

A request carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``:
one ``v1,<base64 HMAC-SHA256>`` per secret, space-separated, over ``<id>.<timestamp>.<body>``.
Several secrets at once let a secret be rotated: the sender signs with the new and the old one
while receivers move over. The HMAC itself is the ``standardwebhooks`` reference library's (the
``webhooks`` extra); this module adds the secrets' checks, the rotation and the tolerance.

Secrets never appear in a message, ``repr()`` or log line of this module.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Final

from .exceptions import BroadcasterError, missing_library

try:
    import standardwebhooks
except ImportError as exc:  # the extra is not installed: using a signer says how to fix it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

SECRET_PREFIX: Final = "whsec_"
ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"
#: The reference library refuses timestamps further than this from now, whatever we allow.
LIBRARY_TOLERANCE: Final = timedelta(minutes=5)


class SignatureInvalid(BroadcasterError, ValueError):
    """A request's signature headers are missing, stale, or match none of the secrets."""


def secrets_problem(secrets: object) -> str | None:
    """Return what is wrong with ``secrets`` (a list of ``whsec_`` strings), or ``None``.

    The message never quotes a secret.
    """
    if isinstance(secrets, str) or not isinstance(secrets, Sequence) or not secrets:
        return "secrets must be a non-empty list of 'whsec_...' strings"
    for position, secret in enumerate(secrets):
        if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
            return f"secret #{position + 1} does not start with {SECRET_PREFIX!r}"
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except binascii.Error:
            return f"secret #{position + 1} is not base64 after {SECRET_PREFIX!r}"
        if not key:
            return f"secret #{position + 1} is empty"
    return None


def new_secret() -> str:
    """Return a new random secret, ``whsec_`` and 32 bytes in base64 (the spec asks 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


class Signer:
    """Sign request bodies with every one of ``secrets`` (see the module docstring).

    Raises ``BroadcasterImproperlyConfigured`` when the ``webhooks`` extra is missing, and
    ``ValueError`` when a secret is malformed (:func:`secrets_problem`).
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        if _MISSING is not None:
            raise missing_library("Webhook signing", "standardwebhooks", "webhooks") from _MISSING
        if problem := secrets_problem(secrets):
            raise ValueError(problem)
        self._webhooks = [standardwebhooks.Webhook(secret) for secret in secrets]

    def headers(self, message_id: str, body: bytes, at: datetime) -> dict[str, str]:
        """Return the three signature headers of ``body`` sent as ``message_id`` at ``at``."""
        signatures = " ".join(hook.sign(message_id, at, body) for hook in self._webhooks)
        return {
            ID_HEADER: message_id,
            TIMESTAMP_HEADER: str(int(at.timestamp())),
            SIGNATURE_HEADER: signatures,
        }

    def verify(self, headers: Mapping[str, str], body: bytes, tolerance: timedelta) -> str:
        """Return the ``webhook-id`` of a request whose signature one of the secrets made.

        ``headers`` are the request's, names in any case. Raises :class:`SignatureInvalid` when
        a header is missing, the timestamp is further than ``tolerance`` from now (at most
        :data:`LIBRARY_TOLERANCE`), or no signature matches; comparisons are constant-time.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        _check_timestamp(lowered.get(TIMESTAMP_HEADER, ""), tolerance)
        failures = []
        for hook in self._webhooks:
            try:
                hook.verify(body, lowered, json_parse=False)
            except standardwebhooks.WebhookVerificationError as exc:
                failures.append(str(exc))
            else:
                return lowered[ID_HEADER]
        raise SignatureInvalid(failures[0] if len(set(failures)) == 1 else "; ".join(failures))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} secrets={len(self._webhooks)}>"


def _check_timestamp(text: str, tolerance: timedelta) -> None:
    try:
        sent = datetime.fromtimestamp(int(text), tz=timezone.utc)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} is missing or not Unix seconds") from exc
    skew = abs(datetime.now(timezone.utc) - sent)
    if skew > tolerance:
        raise SignatureInvalid(
            f"{TIMESTAMP_HEADER} is {skew.total_seconds():.0f} s from now, over the tolerance of "
            f"{tolerance.total_seconds():.0f} s: a replayed request or a wrong clock"
        )
