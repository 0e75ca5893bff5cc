"""JSON Schemas of event data: a typed event class's own, and those registered in ``SCHEMAS``.

A typed event class's schema describes its data as published, in pydantic's serialization mode
(a ``Decimal`` is a string, as :func:`~.typed.data_of` writes it). pydantic makes it for models
and dataclasses alike; it comes with the ``schemas`` extra and is imported only when a schema is
asked for.

``BROADCASTER["SCHEMAS"]`` maps an absolute URI, the ``dataschema`` events name, to a JSON
Schema: a dict, or the dotted path of a dict or of a typed event class (whose schema it is)::

    "SCHEMAS": {"https://shop.example/schemas/refund.json": "shop.schemas.REFUND"}
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.util import find_spec
from typing import Any, Final
from urllib.parse import urlsplit

from django.utils.module_loading import import_string

from .conf import SETTING_NAME, BroadcasterSettings, get_settings
from .exceptions import BroadcasterImproperlyConfigured
from .typed import event_type_of

#: Where a schema's ``$defs`` are referred to from, standalone (pydantic's default).
STANDALONE_REFS: Final = "#/$defs/{model}"
#: The libraries validation needs, by import name, with the extra that brings them.
LIBRARIES: Final = ("jsonschema", "pydantic")
EXTRA: Final = "django-broadcaster[schemas]"

Schema = Mapping[str, Any]


@cache
def data_schema(cls: type, ref_template: str = STANDALONE_REFS) -> dict[str, Any]:
    """Return the JSON Schema of the data of the typed event class ``cls``.

    ``ref_template`` says how the schema refers to the definitions under its ``$defs``. The
    result is shared: do not change it. Raises ``TypeError`` when ``cls`` is not a typed event
    class, and ``BroadcasterImproperlyConfigured`` when pydantic is not installed.
    """
    event_type_of(cls)
    try:
        import pydantic
    except ImportError as exc:
        raise BroadcasterImproperlyConfigured(
            f"The JSON Schema of {cls.__qualname__} needs pydantic: pip install '{EXTRA}'."
        ) from exc
    if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
        return cls.model_json_schema(ref_template=ref_template, mode="serialization")
    adapter = pydantic.TypeAdapter(cls)
    return adapter.json_schema(ref_template=ref_template, mode="serialization")


def missing_libraries() -> list[str]:
    """Return the names of the libraries validation needs that are not installed."""
    return [name for name in LIBRARIES if find_spec(name) is None]


def validation_wanted(raw: Mapping[str, Any]) -> bool:
    """Return whether ``VALIDATE_DATA`` is on anywhere in ``raw`` (the ``BROADCASTER`` dict as
    written): in the setting or in a rule of ``ROUTES``."""
    rules = raw.get("ROUTES")
    return raw.get("VALIDATE_DATA") is True or any(
        isinstance(rule, Mapping) and rule.get("VALIDATE_DATA") is True
        for rule in (rules if isinstance(rules, list | tuple) else ())
    )


_loaded: list[tuple[BroadcasterSettings, dict[str, Schema]]] = []


def registered_schemas(config: BroadcasterSettings | None = None) -> Mapping[str, Schema]:
    """Return the schemas of ``SCHEMAS`` by URI, loaded once per settings object.

    Raises ``BroadcasterImproperlyConfigured`` naming the first problem.
    """
    config = config or get_settings()
    if _loaded and _loaded[0][0] is config:
        return _loaded[0][1]
    schemas, problems = load_schemas(config.schemas)
    if problems:
        raise BroadcasterImproperlyConfigured(problems[0])
    _loaded[:] = [(config, schemas)]
    return schemas


def load_schemas(raw: object) -> tuple[dict[str, Schema], list[str]]:
    """Return the schemas ``raw`` (a ``SCHEMAS`` value) registers, and a message per problem."""
    where = f'{SETTING_NAME}["SCHEMAS"]'
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [f"{where} must be a dict of URIs to schemas, got {type(raw).__name__}."]
    schemas, problems = {}, []
    for uri, value in raw.items():
        if not isinstance(uri, str) or not urlsplit(uri).scheme:
            problems.append(f"{where} key {uri!r} is not an absolute URI, as dataschema must be.")
            continue
        schema = _schema(value)
        if isinstance(schema, str):
            problems.append(f"{where}[{uri!r}] {schema}.")
        else:
            schemas[uri] = schema
    return schemas, problems


def _schema(value: object) -> Schema | str:
    """Return the schema ``value`` names, or what is wrong with it."""
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            return f"cannot be imported ({exc})"
    if isinstance(value, type):
        try:
            return data_schema(value)
        except (TypeError, BroadcasterImproperlyConfigured) as exc:
            return f"is a class without a JSON Schema ({exc})"
    if not isinstance(value, Mapping):
        return "must be a JSON Schema: a dict, or the dotted path of a dict or a typed event class"
    return value
