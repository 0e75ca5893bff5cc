"""The base class every backend extends.

A backend turns :class:`~django_broadcaster.events.CloudEvent` values into messages on one
transport. :meth:`BaseBackend.send_batch` is the one method to write; :meth:`BaseBackend.send` is
built on it. The transport client is built lazily in :meth:`BaseBackend.open`, never in
``__init__``, so building a backend (as the system checks do) touches no network. The base also
builds the errors a backend raises, so that every backend's messages name it the same way.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, NoReturn

from ..events import CloudEvent
from ..exceptions import (
    BackendUnavailable,
    BroadcasterImproperlyConfigured,
    DeliveryError,
    EventRejected,
    missing_library,
)

#: What :meth:`BaseBackend.send_batch` returns: the error of each event (by id) that was refused.
Rejections = dict[str, DeliveryError]
#: What error messages and ``repr()`` show in place of a secret.
MASK: Final = "***"
#: A client option whose name holds one of these words holds a secret (``sasl_plain_password``).
SECRET_WORDS: Final = ("password", "secret")


class BaseBackend:
    """Deliver CloudEvents to one destination.

    Backends are built as ``Backend(alias=alias, **OPTIONS)``. A subclass takes its own options
    as keyword arguments and passes the rest up; any option left over here is unknown, and
    raises ``BroadcasterImproperlyConfigured`` naming the alias, the closest valid option and
    all of them (see :func:`accepted_options`).

    Backends are context managers: ``with backend:`` opens and closes the connection.
    """

    #: Configured secrets (passwords) that error messages must not show; see :meth:`_scrub`.
    _secrets: frozenset[str] = frozenset()

    def __init__(self, alias: str, **options: Any) -> None:
        self.alias = alias
        if options:
            self._improperly_configured(unknown_options(type(self), options))

    def open(self) -> bool:
        """Open the connection if needed; return whether this call opened it.

        The default has no connection to open and returns ``False``.
        """
        return False

    def close(self) -> None:
        """Close the connection if one is open. Safe to call twice, or without :meth:`open`."""

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        """Deliver ``events`` and return the error of each one that was refused, by event id.

        An event missing from the result was accepted; a refused one maps to its
        :class:`~django_broadcaster.exceptions.EventRejected`. Raises
        :class:`~django_broadcaster.exceptions.BackendUnavailable` when the destination cannot be
        reached; the worker then retries the whole batch later without spending retries, so
        events accepted before the outage may be delivered twice. Subclasses implement this.

        A subclass written for 0.2.0 may implement only :meth:`send`: this method then calls it
        for each event.
        """
        if type(self).send is BaseBackend.send:
            raise NotImplementedError(f"{type(self).__name__} must implement send_batch().")
        rejected: Rejections = {}
        for event in events:
            try:
                self.send(event)
            except BackendUnavailable:
                raise
            except DeliveryError as exc:
                rejected[str(event.id)] = exc
        return rejected

    def send(self, event: CloudEvent) -> None:
        """Deliver one event through :meth:`send_batch`, or raise its ``DeliveryError``.

        Raises ``EventRejected`` when the destination refuses the event and
        ``BackendUnavailable`` when it cannot be reached.
        """
        error = self.send_batch([event]).get(str(event.id))
        if error is not None:
            raise error

    def __enter__(self) -> BaseBackend:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"

    # --- Errors, for subclasses -------------------------------------------------------------

    def _improperly_configured(self, problem: str) -> NoReturn:
        """Raise ``BroadcasterImproperlyConfigured`` for ``problem``, naming alias and class."""
        raise BroadcasterImproperlyConfigured(f"{self._label()}: {problem}.")

    def _require_library(self, missing: ImportError | None, package: str, extra: str) -> None:
        """Raise ``BroadcasterImproperlyConfigured`` saying which extra installs ``package``.

        ``missing`` is the error of importing the client library, ``None`` when it is there.
        """
        if missing is not None:
            raise missing_library(self._label(), package, extra) from missing

    def _rejected(self, event: CloudEvent, cause: object) -> EventRejected:
        """Return the ``EventRejected`` of ``event`` for ``cause``, chained if it is an error."""
        error = EventRejected(
            f"Backend {self.alias!r}: {self._where()} refused event {event.id}: "
            f"{self._scrub(cause)}",
            destination=self.alias,
        )
        if isinstance(cause, BaseException):
            error.__cause__ = cause
        return error

    def _unavailable(
        self, cause: object, retry_after: timedelta | None = None
    ) -> BackendUnavailable:
        """Return the ``BackendUnavailable`` for ``cause``; the caller raises it ``from`` it.

        ``retry_after`` is how long the destination asked not to be called again, if it did.
        """
        return BackendUnavailable(
            f"Backend {self.alias!r}: {self._where()} is unavailable: {self._scrub(cause)}",
            destination=self.alias,
            retry_after=retry_after,
        )

    def _label(self) -> str:
        """Return how configuration errors name this backend: alias and class."""
        return label(self.alias, type(self))

    def _where(self) -> str:
        """Return what error messages call the destination; subclasses add its address."""
        return type(self).__name__

    def _scrub(self, cause: object) -> str:
        """Return ``str(cause)`` with each of ``_secrets`` masked (defence in depth)."""
        return masked(str(cause), self._secrets)


def masked(text: str, secrets: Iterable[object]) -> str:
    """Return ``text`` with every non-empty string of ``secrets`` replaced by :data:`MASK`."""
    for secret in secrets:
        if isinstance(secret, str) and secret:
            text = text.replace(secret, MASK)
    return text


def label(alias: str, backend_class: type) -> str:
    """Return how configuration errors name a backend: ``Backend 'alias' (Class)``."""
    return f"Backend {alias!r} ({backend_class.__name__})"


def accepted_options(backend_class: type[BaseBackend]) -> dict[str, bool]:
    """Return the options ``backend_class`` takes, by name, each mapped to whether it is required.

    They are the keyword parameters of each ``__init__`` along its MRO, down to the first that
    passes no ``**options`` on (:class:`BaseBackend`'s own are the unknown ones).
    """
    accepted: dict[str, bool] = {}
    for klass in backend_class.__mro__:
        if klass is BaseBackend or klass is object:
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = list(inspect.signature(init).parameters.values())[1:]  # self
        for parameter in parameters:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                accepted.setdefault(parameter.name, parameter.default is parameter.empty)
        if all(p.kind is not p.VAR_KEYWORD for p in parameters):
            break
    accepted.pop("alias", None)
    return accepted


def unknown_options(backend_class: type[BaseBackend], unknown: Iterable[str]) -> str:
    """Return what is wrong with the ``unknown`` options of ``backend_class``, for an error:
    each one with the valid option closest to it, if any, then the list of valid options."""
    valid = sorted(accepted_options(backend_class))
    named = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, valid, n=1)
        named.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "option" if len(named) == 1 else "options"
    listed = f"the valid options are {', '.join(valid)}" if valid else "it takes no options"
    return f"unknown {noun} {', '.join(named)}; {listed}"


def secret_option_values(options: Mapping[str, Any]) -> set[str]:
    """Return the non-empty strings among ``options`` whose names hold one of SECRET_WORDS."""
    return {
        value
        for name, value in options.items()
        if isinstance(value, str) and value and any(w in name.lower() for w in SECRET_WORDS)
    }
