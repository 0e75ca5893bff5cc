"""The exception tree of django-broadcaster.

Publishing raises :class:`InvalidEvent` (a ``ValueError``) for bad input, before anything is
written. Backends raise :class:`DeliveryError` subclasses; the worker tells an outage
(:class:`BackendUnavailable`, which never spends an event's retries) from a rejection of one
event (:class:`EventRejected`) by type alone, never by message text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured


class BroadcasterError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidEvent(BroadcasterError, ValueError):
    """An event cannot be published as given; the message names the attribute and the fix."""


class BroadcasterImproperlyConfigured(BroadcasterError, ImproperlyConfigured):
    """The ``BROADCASTER`` setting or a backend's ``OPTIONS`` are wrong, or ``USE_TZ`` is off."""


class UnknownBackend(InvalidEvent):
    """A publisher named a backend alias that is not in ``BROADCASTER["BACKENDS"]``."""


class DeliveryError(BroadcasterError):
    """A destination did not accept an event.

    ``destination`` names the backend alias or handler that failed; the original exception,
    when there is one, is chained as ``__cause__``.
    """

    def __init__(self, message: str, *, destination: str = "") -> None:
        super().__init__(message)
        self.destination = destination


class EventRejected(DeliveryError):
    """The destination refused this one event (too large, invalid for the broker, ...).

    The event spends one retry; other events of the batch are unaffected.
    """


class BackendUnavailable(DeliveryError):
    """The destination could not be reached at all (connection refused, timeout, ...).

    An outage is not the event's fault: the worker defers the event without spending a retry
    and stops calling the backend for a while (a circuit breaker), at least ``retry_after`` when
    the destination said how long (an HTTP ``Retry-After``).
    """

    def __init__(
        self, message: str, *, destination: str = "", retry_after: timedelta | None = None
    ) -> None:
        super().__init__(message, destination=destination)
        self.retry_after = retry_after


class HandlerTimeout(DeliveryError, TimeoutError):
    """A local handler did not return within ``HANDLER_TIMEOUT``: its failure on this event.

    The call goes on in the background, since a thread cannot be stopped; if it ever returns, its
    transaction is rolled back.
    """


class HandlerBusy(DeliveryError):
    """A local handler was not called: a call of it that missed its deadline is still running.

    Not the event's fault: the event waits for the handler until ``until``, no retry spent.
    """

    def __init__(self, message: str, *, destination: str = "", until: datetime) -> None:
        super().__init__(message, destination=destination)
        self.until = until


class PredicateFailed(DeliveryError):
    """A handler's ``when=`` predicate raised on an event: that handler's failure for the event.

    The handler is not called for it; the other destinations of the event are unaffected.
    """


class LeaseLost(BroadcasterError):
    """The worker no longer holds the event (its lease ran out and another worker took it)."""


def missing_library(user: str, package: str, extra: str) -> BroadcasterImproperlyConfigured:
    """Return the error for ``user`` (a backend, consumer or option) whose library is missing.

    Raise it ``from`` the ``ImportError``; the message says which extra installs the library.
    """
    return BroadcasterImproperlyConfigured(
        f"{user} needs the {package} package: pip install 'django-broadcaster[{extra}]'."
    )


def describe(error: BaseException) -> str:
    """Return how a destination's ``error`` is written down: its class's name, a colon, its text.

    :func:`~django_broadcaster.outbox.deliveries.error_kind` reads the class back from it.
    """
    return f"{type(error).__name__}: {error}"
