"""System checks: bad settings fail at start-up (``manage.py check``), not in the worker.

- ``django_broadcaster.E001``: a key or value of ``BROADCASTER`` is wrong.
- ``django_broadcaster.W001``: the 0.1.1 setting ``OUTBOX_PUBLISHERS`` is still in use.
- ``django_broadcaster.E002``: a ``BACKENDS`` entry is malformed.
- ``django_broadcaster.W002``: ``LEASE_DURATION`` is not well above ``SEND_DEADLINE`` plus
  ``HANDLER_TIMEOUT``.
- ``django_broadcaster.E003``: a backend cannot be built: unknown dotted path, not a backend
  class, a missing client library, or an unknown, missing or invalid option.
- ``django_broadcaster.W003``: a consumer command reads a stream or topic that a configured
  backend writes, so the project consumes its own events. Only the command knows what it reads:
  it prints this warning when it starts (see :func:`own_events_warnings`).
- ``django_broadcaster.E004``: ``USE_TZ`` is off: events need timezone-aware times.
- ``django_broadcaster.W004``: a Redis backend sets ``max_len``, which drops the oldest entries
  whether or not the consumer groups have read them.
- ``django_broadcaster.E010``: a command class has no handler in ``event_registry``.
- ``django_broadcaster.E011``: a command class has more than one handler.
- ``django_broadcaster.W020``: ``EAGER`` is on while ``DEBUG`` is off: eager mode is for
  development and tests, not production.
- ``django_broadcaster.E030``: ``BROADCASTER["WEBHOOK_RECEIVER"]`` is wrong (its secrets, its
  tolerance, its attempts or an unknown key).
- ``django_broadcaster.E031``: a webhook backend's ``timeout`` is not below ``SEND_DEADLINE``,
  so the worker would give up on a request before the request itself does.
- ``django_broadcaster.E050``: a rule of ``ROUTES`` is malformed (its shape, a key or a value).
- ``django_broadcaster.W050``: two rules' types overlap: an event matching both goes by the
  earlier one only. Put the narrower rule first, or silence the warning if that is intended.
- ``django_broadcaster.E051``: a rule of ``ROUTES`` names a backend alias that is not configured.
- ``django_broadcaster.E052``: a rule of ``ROUTES`` can never match: earlier rules take every
  type it names (the first matching rule wins).
- ``django_broadcaster.E060`` to ``E063`` and ``W060``: a ``DEAD_LETTER`` is malformed, unknown,
  its own, chained or mixed with ordinary events (:func:`.dead_letters.check_messages`).

The command checks cover every :class:`~.commands.Command` class defined in an installed app's
module and imported by the time the checks run (its ``handlers`` module, its models, the URLconf
and what they import): a command's one handler must be known before anything sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .commands import COMMANDS, Command
from .conf import (
    LEGACY_SETTING_NAME,
    SETTING_NAME,
    BackendConfig,
    backend_shape_errors,
    backends_setting,
    get_settings,
    raw_settings,
    settings_errors,
    time_zone_errors,
)
from .dead_letters import check_messages as dead_letter_messages
from .registry import EventRegistry, event_registry
from .routing import overlapping_rules, parse_routes, shadowed_rules, unknown_aliases
from .typed import event_type_of

if TYPE_CHECKING:
    from .backends.base import BaseBackend

HINT = "See the settings reference in the django-broadcaster documentation."
ZONE_HINT = "Set USE_TZ = True (Django's default since 5.0)."
APP = "django_broadcaster"
OWN_EVENTS = "django_broadcaster.W003"
COMMAND_HINT = (
    "A command has exactly one handler: register one function with "
    "@event_registry.register(TheCommandClass) in the app's handlers.py, and no other."
)
#: How many send deadlines a lease must last, leaving room for handlers and the deadline's growth,
#: on top of one handler call that runs out its ``HANDLER_TIMEOUT``.
LEASE_OVER_DEADLINE = 4


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report problems in ``BROADCASTER``, its backends, and Django settings it relies on."""
    value_errors = settings_errors()
    messages: list[CheckMessage] = [
        Error(message, hint=HINT, id="django_broadcaster.E001") for message in value_errors
    ]
    shape_errors = backend_shape_errors()
    messages += [
        Error(message, hint=HINT, id="django_broadcaster.E002") for message in shape_errors
    ]
    if not shape_errors:
        messages += _backend_messages()
    zone_errors = time_zone_errors()
    messages += [
        Error(message, hint=ZONE_HINT, id="django_broadcaster.E004") for message in zone_errors
    ]
    if not value_errors and not shape_errors and not zone_errors:
        messages += _lease_warnings() + _eager_warnings()  # get_settings() raises on any above
    messages += _legacy_setting_warnings() + _receiver_errors()
    if not shape_errors:
        messages += _route_messages(raw_settings().get("ROUTES", []))
    return messages


def _route_messages(raw: object) -> list[CheckMessage]:
    if not isinstance(raw, list | tuple):
        return []  # E001 says so
    routes, errors = parse_routes(raw)
    found = [(message, "E050") for message in errors]
    found += [(message, "E051") for message in unknown_aliases(routes, backends_setting())]
    found += [(message, "E052") for message in shadowed_rules(routes)]
    found += [(message, "W050") for message in overlapping_rules(routes)]
    found += dead_letter_messages(backends_setting(), routes)
    return [
        (Error if code[0] == "E" else Warning)(
            message, hint=_ROUTE_HINTS[code[1:3]], id=f"django_broadcaster.{code}"
        )
        for message, code in found
    ]


_ROUTE_HINTS = {
    "05": "See Routing in the django-broadcaster documentation.",
    "06": "See Dead letters in the django-broadcaster documentation.",
}


@register()
def check_commands(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report the command classes of installed apps that have no handler, or more than one."""
    installed = [c for c in COMMANDS.values() if apps.get_containing_app_config(c.__module__)]
    return command_errors(installed, event_registry)


def command_errors(
    commands: Iterable[type[Command]], registry: EventRegistry
) -> list[CheckMessage]:
    """Return an ``E010`` or ``E011`` error for each of ``commands`` without exactly one handler
    in ``registry``."""
    messages: list[CheckMessage] = []
    for command in commands:
        names = sorted(registry.handlers_for(event_type_of(command)))
        if len(names) == 1:
            continue
        what = f"The command {command.__module__}.{command.__qualname__}"
        if names:
            message, id_ = f"{what} has {len(names)} handlers: {', '.join(names)}.", "E011"
        else:
            message, id_ = f"{what} has no handler: nothing would run it.", "E010"
        messages.append(Error(message, hint=COMMAND_HINT, obj=command, id=f"{APP}.{id_}"))
    return messages


def _backend_messages() -> list[CheckMessage]:
    from .backends import create_backend

    messages: list[CheckMessage] = []
    for alias, config in backends_setting().items():
        backend_config = BackendConfig(alias, config["BACKEND"], dict(config.get("OPTIONS", {})))
        try:
            backend = create_backend(backend_config)
        except ImproperlyConfigured as exc:
            messages.append(Error(str(exc), hint=HINT, id="django_broadcaster.E003"))
        else:
            messages += _trimming_warnings(alias, backend) + _webhook_timeout_errors(alias, backend)
    return messages


def _webhook_timeout_errors(alias: str, backend: BaseBackend) -> list[CheckMessage]:
    from .backends.webhook import WebhookBackend

    if not isinstance(backend, WebhookBackend) or backend.timeout is None or settings_errors():
        return []
    deadline = get_settings().send_deadline
    if backend.timeout < deadline:
        return []
    return [
        Error(
            f"The webhook backend {alias!r} waits up to {backend.timeout} for an answer "
            f"(timeout), not less than SEND_DEADLINE ({deadline}): the worker would count a slow "
            "answer as an outage while the request still runs.",
            hint="Lower the backend's timeout, or leave it out (three quarters of SEND_DEADLINE).",
            id="django_broadcaster.E031",
        )
    ]


def _receiver_errors() -> list[CheckMessage]:
    from .receivers import receiver_settings_errors

    return [
        Error(message, hint=HINT, id="django_broadcaster.E030")
        for message in receiver_settings_errors()
    ]


def _trimming_warnings(alias: str, backend: BaseBackend) -> list[CheckMessage]:
    from .backends.redis import RedisStreamBackend

    if not isinstance(backend, RedisStreamBackend) or backend.max_len is None:
        return []
    return [
        Warning(
            f"The backend {alias!r} trims its Redis stream to about {backend.max_len} entries "
            "(max_len): Redis drops the oldest, whether or not every consumer group has read them.",
            hint="Remove max_len to keep every entry, or set retention='consumed' to trim only "
            "what every consumer group has read and acknowledged.",
            id="django_broadcaster.W004",
        )
    ]


def _lease_warnings() -> list[CheckMessage]:
    config = get_settings()
    hang = config.handler_timeout or timedelta(0)
    if config.lease_duration > LEASE_OVER_DEADLINE * config.send_deadline + hang:
        return []
    return [
        Warning(
            f"LEASE_DURATION ({config.lease_duration}) is not more than {LEASE_OVER_DEADLINE} "
            f"times SEND_DEADLINE ({config.send_deadline}) plus HANDLER_TIMEOUT ({hang}): a "
            "batch that waits for a slow backend or a hung handler can outlast its lease, and "
            "another worker will deliver it again.",
            hint="Raise LEASE_DURATION (default 60 s), or lower SEND_DEADLINE (default 2 s) or "
            "HANDLER_TIMEOUT (default 10 s).",
            id="django_broadcaster.W002",
        )
    ]


def _eager_warnings() -> list[CheckMessage]:
    if not get_settings().eager or settings.DEBUG:
        return []
    return [
        Warning(
            "BROADCASTER['EAGER'] is on while DEBUG is off: each request delivers its events "
            "itself after its commit, waiting for every backend and handler, and an event whose "
            "delivery fails waits for a worker that eager mode lets you do without.",
            hint="Remove EAGER in production and run `manage.py outbox_worker`; eager mode is "
            "for development and tests.",
            id="django_broadcaster.W020",
        )
    ]


def _legacy_setting_warnings() -> list[CheckMessage]:
    if not hasattr(settings, LEGACY_SETTING_NAME):
        return []
    if "BACKENDS" in raw_settings():
        hint = f"It is ignored because {SETTING_NAME}['BACKENDS'] is set; remove it."
    else:
        hint = f"Move its value to {SETTING_NAME} = {{'BACKENDS': ...}}; the format is the same."
    return [
        Warning(
            f"The {LEGACY_SETTING_NAME} setting is deprecated.",
            hint=hint,
            id="django_broadcaster.W001",
        )
    ]


def own_events_warnings(
    reads: str, writes_there: Callable[[BaseBackend], bool]
) -> list[CheckMessage]:
    """Return a ``django_broadcaster.W003`` warning per configured backend that writes there.

    ``reads`` names what the consumer reads, for the message ("the Redis stream 'orders'");
    ``writes_there(backend)`` says whether a backend writes it. A backend that cannot be built
    is skipped (``E003`` reports it). Returns ``[]`` when ``SILENCED_SYSTEM_CHECKS`` lists W003.
    """
    from .backends import create_backend

    if OWN_EVENTS in settings.SILENCED_SYSTEM_CHECKS:
        return []
    writers = []
    for alias, config in get_settings().backends.items():
        try:
            backend = create_backend(config)
        except ImproperlyConfigured:
            continue
        if writes_there(backend):
            writers.append(alias)
    return [
        Warning(
            f"This consumer reads {reads}, which the backend {alias!r} writes: the project "
            "consumes the events it publishes.",
            hint="The outbox worker already runs the local handlers (event_registry) of those "
            "events; keep in consumer_registry only the work to do on receipt. If that is "
            f"intended, add {OWN_EVENTS!r} to SILENCED_SYSTEM_CHECKS.",
            id=OWN_EVENTS,
        )
        for alias in writers
    ]
