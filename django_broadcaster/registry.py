"""Handlers: functions called with an event, by the outbox worker or by a consumer.

Two registries keep the two roles apart, so one event never runs one handler twice:

- :data:`event_registry` holds **local handlers**: the outbox worker calls them with each event
  this project publishes, as a destination of its own next to the backends;
- :data:`consumer_registry` holds **consumer handlers**: ``consume_redis`` and ``consume_kafka``
  call them with each event read from a broker, through the inbox.

Register with ``@event_registry.register(...)``: an event type, a typed event or command class,
or nothing (every event but commands). Each installed app's ``handlers`` module is imported at
start-up: the place for both kinds. The worker waits ``HANDLER_TIMEOUT`` for a local handler.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import Context, copy_context
from datetime import timedelta
from typing import Final, TypeVar

from django.db import connections, transaction
from django.utils import timezone

from .commands import COMMANDS, as_registered
from .events import CloudEvent
from .exceptions import HandlerBusy, HandlerTimeout
from .handler_names import HANDLER_PREFIX, HandlerNames, handler_name  # noqa: F401  (public here)
from .predicates import Listing, Predicate, When, refusals, typed_predicate
from .signals import event_created, event_published  # noqa: F401  (0.1.1 had them here)
from .stopping import MAIN_THREAD_SIGNALS, StopNow
from .typed import event_type_of

logger = logging.getLogger(__name__)

Handler = Callable[[CloudEvent], object]
H = TypeVar("H", bound=Callable[..., object])
#: A handler's call: given what to run once the handler has returned, before the commit.
Call = Callable[[Callable[[], None]], None]
Inside = AbstractContextManager[Callable[[Handler, object], None] | None]  # see call_handlers()

#: How long the handler thread waits idle before it closes its database connection.
IDLE_CLOSE_S: Final = 5.0


class EventRegistry:
    """Map event types to the local handlers that receive them.

    Each handler gets a destination name, stable across restarts (:mod:`.handler_names`).
    :attr:`predicates` maps the name of each handler registered ``when=`` to its predicate.
    """

    def __init__(self) -> None:
        self._by_type: dict[str, dict[str, Handler]] = {}  # each handler by name
        self._for_all: dict[str, Handler] = {}
        self._names = HandlerNames()
        self._found: dict[str, dict[str, Handler]] = {}  # handlers_for() until a change
        self._thread: _HandlerThread | None = None
        self._late: dict[str, _HandlerThread] = {}  # each handler's call that missed its deadline
        self._calling = threading.Lock()
        self.predicates: dict[str, Predicate] = {}

    def register(
        self, event_type: str | type | None = None, *, when: When | None = None
    ) -> Callable[[H], H]:
        """Return a decorator that registers a handler for ``event_type``, or for every event.

        ``event_type`` is a CloudEvent type, a typed event class (the handler still gets the
        :class:`CloudEvent`) or a command class (it gets the command), else ``TypeError``. With
        ``when``, the handler gets only the events it is true for (:mod:`.predicates`). The
        decorator returns the handler unchanged, so it stacks; registering it again is a no-op.
        """
        typed: type | None = None
        if isinstance(event_type, type):
            typed, event_type = event_type, event_type_of(event_type)
            when = when and typed_predicate(when, typed)

        def decorator(handler: H) -> H:
            handlers = (
                self._for_all if event_type is None else self._by_type.setdefault(event_type, {})
            )
            call = as_registered(typed, handler, when)
            name = self._names.of(call)
            if name not in handlers:
                handlers[name] = call
                self._found.clear()
                logger.debug("Registered %s for %s", name, event_type or "*")
            if when is not None:
                self.predicates[name] = when
            return handler

        return decorator

    def unregister(self, handler: Handler, event_type: str | None = None) -> None:
        """Remove ``handler`` from ``event_type``, or from the catch-alls; no error if absent."""
        handlers = self._for_all if event_type is None else self._by_type.get(event_type, {})
        if handlers.pop(self._names.known(handler) or "", None) is not None:
            self._found.clear()

    def handlers_for(self, event_type: str) -> dict[str, Handler]:
        """Return the handlers of ``event_type`` by destination name: its own, then catch-alls."""
        if event_type not in self._found:
            catch_alls = {} if event_type in COMMANDS else self._for_all  # point to point
            self._found[event_type] = {**self._by_type.get(event_type, {}), **catch_alls}
        return self._found[event_type]

    def call_handlers(
        self,
        event: CloudEvent,
        *,
        skip: Collection[str] = (),
        listing: Listing | None = None,
        inside: Callable[[str], Inside] = lambda name: nullcontext(),
        timeout: timedelta | None = None,
    ) -> Iterator[tuple[str, BaseException | None]]:
        """Call each handler of ``event`` but those in ``skip``; yield its name and its error.

        With ``listing`` (the claimed row) they skip what it has delivered and what it does not
        list for them (:func:`.predicates.refusals`: a predicate's failure is yielded again).

        Each runs in a transaction of its own, with ``inside(name)`` entered around the call (it
        may give a function, called with the handler and what it returned but ``None``), so a
        failing handler rolls back only its own writes. Any exception a handler raises is its
        failure (``SystemExit`` and ``KeyboardInterrupt`` too); only the worker's own
        :class:`~django_broadcaster.stopping.StopNow` goes on up.

        With a ``timeout``, each call runs on the handler thread; one still running then fails
        with :class:`~django_broadcaster.exceptions.HandlerTimeout` and goes on (a thread cannot
        be stopped), to be rolled back if it ever returns. Until it does, its handler is not
        called: :class:`~django_broadcaster.exceptions.HandlerBusy`. In a transaction of the
        caller's, whose rows no other connection sees, calls stay on the caller's thread.
        """
        timeout = None if transaction.get_connection().in_atomic_block else timeout
        skip = {*skip, *listing.delivered} if listing else skip
        refused = refusals(self.predicates, listing) if listing and self.predicates else {}
        for name, handler in self.handlers_for(event.event_type).items():
            if name in skip or name in refused:
                if (failure := refused.get(name)) is not None and name not in skip:
                    yield name, failure
                continue
            call = functools.partial(_call, handler, event, inside(name))
            try:
                if timeout is None:
                    call(lambda: None)
                else:
                    self._call_in_time(name, event, call, timeout)
            except StopNow:
                raise
            except BaseException as exc:  # the handler's, whatever it is
                yield name, exc
            else:
                logger.debug("Handler %s handled event %s (%s).", name, event.id, event.event_type)
                yield name, None

    def close(self, wait_s: float = 5.0) -> None:
        """End the handler thread, which closes its connection (late calls go on); safe twice."""
        with self._calling:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.close(wait_s)

    def destinations(self) -> Mapping[str, frozenset[str] | None]:
        """Return each handler's destination name and the event types it gets (``None``: all)."""
        types: dict[str, set[str] | None] = {}
        for event_type, handlers in self._by_type.items():
            for name in handlers:
                known = types.setdefault(name, set())
                if known is not None:
                    known.add(event_type)
        for name in self._for_all:
            types[name] = None
        return {name: None if got is None else frozenset(got) for name, got in types.items()}

    def clear(self) -> None:
        """Remove every handler (for tests)."""
        self._by_type.clear()
        self._for_all.clear()
        self._names.clear()
        self._found.clear()
        self.predicates.clear()

    def _call_in_time(self, name: str, event: CloudEvent, call: Call, timeout: timedelta) -> None:
        with self._calling:  # one caller at a time: a call waits for no other
            late = self._late.get(name)
            if late is not None and late.thread.is_alive():
                raise HandlerBusy("still busy with a late call", until=timezone.now() + timeout)
            thread = self._thread = self._thread or _HandlerThread()
            try:
                if thread.call(call, timeout.total_seconds(), f"{name} on {event.id}"):
                    return
            finally:
                if thread.late:  # at its deadline, or the caller stopped waiting (StopNow)
                    self._thread, self._late[name] = None, thread
        seconds = timeout.total_seconds()
        frame = sys._current_frames().get(thread.thread.ident or 0)
        logger.error(
            "Handler %s did not return within %g s on event %s; it goes on in the background, "
            "to be rolled back, and gets no other call meanwhile. It is at:\n%s",
            name,
            seconds,
            event.id,
            "".join(traceback.format_stack(frame)) if frame else "(it has returned)\n",
        )
        raise HandlerTimeout(f"no return within {seconds:g} s", destination=name)


def _call(handler: Handler, event: CloudEvent, inside: Inside, ready: Callable[[], None]) -> None:
    with transaction.atomic():
        with inside as returned:
            if (result := handler(event)) is not None and returned is not None:
                returned(handler, result)
        ready()  # may raise, to roll the call back


class _HandlerThread:
    """A thread making handler calls one at a time; a late one is its last (see call_handlers)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Call, str, Context] | None] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._committing = self.late = False
        self.thread = threading.Thread(target=self._serve, name="broadcaster-handlers", daemon=True)
        self.thread.start()

    def call(self, call: Call, timeout_s: float, what: str) -> bool:
        """Make ``call`` (``what``, for the log); return if it ended in ``timeout_s``, or raise."""
        self._committing = False
        self._calls.put((call, what, copy_context()))  # a span, say, goes with the call
        try:
            error = self._results.get(timeout=timeout_s)
        except queue.Empty:
            if self._give_up():
                return False
            error = self._results.get()  # its handler returned in time: it commits
        except BaseException:  # StopNow while waiting: what the call wrote must not land
            self._give_up()
            raise
        if error is not None:
            raise error
        return True

    def close(self, wait_s: float) -> None:
        self._calls.put(None)
        self.thread.join(wait_s)

    def _give_up(self) -> bool:
        with self._lock:
            self.late = not self._committing
            return self.late

    def _before_commit(self) -> None:
        with self._lock:
            if self.late:
                raise HandlerTimeout("given up on at its deadline")
            self._committing = True

    def _serve(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
        try:
            while (item := self._next()) is not None:
                call, what, context = item
                error: BaseException | None = None
                try:
                    context.run(call, self._before_commit)
                except BaseException as exc:  # the caller raises it
                    error = exc
                    for connection in connections.all():
                        connection.close_if_unusable_or_obsolete()
                if self.late:
                    logger.warning("Handler %s returned after its deadline: rolled back.", what)
                    return
                self._results.put(error)
        finally:
            connections.close_all()

    def _next(self) -> tuple[Call, str, Context] | None:
        try:
            return self._calls.get(timeout=IDLE_CLOSE_S)
        except queue.Empty:
            connections.close_all()
            return self._calls.get()


#: 0.1.1's name of :class:`EventRegistry`.
EventHandlerRegistry = EventRegistry

#: The registry the outbox worker reads: local handlers of the events this project publishes.
event_registry = EventRegistry()

#: The registry the consumers read: handlers of the events received from a broker.
consumer_registry = EventRegistry()
