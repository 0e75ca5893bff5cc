"""Typed events: publish instances of your own classes, register handlers by class.

A typed event class is a dataclass, or a pydantic v2 model, whose class attribute ``event_type``
names its CloudEvent type; an optional class attribute ``source`` gives its default source::

    @dataclass(frozen=True)
    class OrderCreated:
        event_type: ClassVar[str] = "order.created"
        source: ClassVar[str] = "shop/orders"
        order_id: int

    publisher.publish(OrderCreated(order_id=1))

    @event_registry.register(OrderCreated)
    def on_order_created(event: CloudEvent) -> None:
        order = from_cloud_event(OrderCreated, event)

The event's ``data`` is the instance's fields as JSON: pydantic's ``model_dump(mode="json")``, or
for a dataclass :func:`dataclasses.asdict` with dates, times, decimals and UUIDs written as strings
(as :class:`~django.core.serializers.json.DjangoJSONEncoder` does). A field named ``event_type`` or
``source`` is data, never taken for the class attribute. Handlers keep receiving the immutable
:class:`~django_broadcaster.events.CloudEvent`; :func:`from_cloud_event` rebuilds the instance.
pydantic is never imported here: models are recognised by their ``model_dump`` and
``model_validate`` methods.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from django.core.serializers.json import DjangoJSONEncoder

from .events import CloudEvent, ExtensionValue
from .exceptions import InvalidEvent

T = TypeVar("T")


def event_type_of(cls: type) -> str:
    """Return the CloudEvent type that the typed event class ``cls`` names.

    Raises ``TypeError`` when ``cls`` has no non-empty string class attribute ``event_type``.
    """
    value = _class_attribute(cls, "event_type")
    if not isinstance(value, str) or not value:
        raise TypeError(
            f"{cls.__qualname__} names no CloudEvent type: give it a class attribute "
            '`event_type: ClassVar[str] = "order.created"`.'
        )
    return value


def source_of(cls: type) -> str | None:
    """Return the class attribute ``source`` of ``cls``, or ``None`` when it has none."""
    value = _class_attribute(cls, "source")
    return value if isinstance(value, str) else None


def data_of(instance: object) -> Any:
    """Return the fields of ``instance`` (a dataclass or pydantic model) as JSON-ready values.

    Raises ``TypeError`` for any other kind of object.
    """
    if _is_pydantic_model(type(instance)):
        return getattr(instance, "model_dump")(mode="json")  # noqa: B009 (no pydantic stubs)
    if dataclasses.is_dataclass(instance) and not isinstance(instance, type):
        return json.loads(json.dumps(dataclasses.asdict(instance), cls=DjangoJSONEncoder))
    raise TypeError(
        f"Cannot publish a {type(instance).__qualname__}: typed events are dataclass instances "
        "or pydantic models; use publish_event() for plain data."
    )


def to_cloud_event(
    instance: object,
    *,
    source: str | None = None,
    subject: str | None = None,
    dataschema: str | None = None,
    extensions: Mapping[str, ExtensionValue] | None = None,
) -> CloudEvent:
    """Return the CloudEvent for the typed event ``instance`` (without id and time yet).

    ``source`` overrides the class's ``source``. Raises ``TypeError`` when ``instance`` is not a
    typed event, and :class:`InvalidEvent` when it has no source at all or breaks the spec.
    """
    cls = type(instance)
    data = data_of(instance)
    event_type = event_type_of(cls)
    source = source or source_of(cls)
    if source is None:
        raise InvalidEvent(
            f"{cls.__qualname__} has no source: pass source=... or give the class a "
            '`source: ClassVar[str] = "my-service"`.'
        )
    return CloudEvent(
        event_type=event_type,
        source=source,
        data=data,
        subject=subject or None,
        dataschema=dataschema,
        extensions=dict(extensions or {}),
    )


def from_cloud_event(cls: type[T], event: CloudEvent) -> T:
    """Rebuild an instance of the typed event class ``cls`` from ``event``'s data.

    A pydantic model is validated (``model_validate``), so its field types are restored; a
    dataclass is called with the data as keyword arguments, so dates and decimals stay the
    strings they were sent as. Raises :class:`InvalidEvent` when the event's type is not
    ``cls``'s or its data is not an object; the class's own errors (``TypeError``, pydantic's
    ``ValidationError``) propagate.
    """
    expected = event_type_of(cls)
    if event.event_type != expected:
        raise InvalidEvent(
            f"Cannot read a {event.event_type!r} event as {cls.__qualname__} ({expected!r})."
        )
    if not isinstance(event.data, Mapping):
        raise InvalidEvent(
            f"Cannot read event {event.id} as {cls.__qualname__}: its data is not a JSON object."
        )
    if _is_pydantic_model(cls):
        return cast(T, getattr(cls, "model_validate")(event.data))  # noqa: B009
    return cls(**event.data)


def _class_attribute(cls: type, name: str) -> object:
    """Return ``cls.<name>`` unless ``name`` is one of its data fields (then ``None``)."""
    return None if name in _field_names(cls) else getattr(cls, name, None)


def _field_names(cls: type) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {field.name for field in dataclasses.fields(cls)}
    if _is_pydantic_model(cls):
        return set(getattr(cls, "model_fields", {}))
    return set()


def _is_pydantic_model(cls: type) -> bool:
    return all(hasattr(cls, name) for name in ("model_dump", "model_validate", "model_fields"))
