"""Check event data against JSON Schemas when it is published: opt-in, with ``VALIDATE_DATA``.

With ``BROADCASTER["VALIDATE_DATA"] = True``, or ``"VALIDATE_DATA": True`` on a rule of
``ROUTES`` (a rule's value wins over the setting for its events), the publisher checks a typed
event's data against its class's schema, and any event's data against the schema its
``dataschema`` names when ``SCHEMAS`` registers it (:mod:`.schemas`). jsonschema does the check;
it is imported on the first one, so with validation off nothing of it is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import InvalidEvent
from .schemas import Schema, data_schema, registered_schemas

if TYPE_CHECKING:
    from .events import CloudEvent
    from .routing import Route

#: The validator built for each schema, by ``id()``; the schema is kept so the id stays its own.
_validators: dict[int, tuple[Schema, Any]] = {}


def check_data(event: CloudEvent, typed: type | None, route: Route | None) -> None:
    """Raise :class:`InvalidEvent` if ``event``'s data breaks a schema that applies to it.

    Those are the schema of ``typed``, the typed event class it was made from (``None`` for a
    plain event), and the one ``SCHEMAS`` registers for its ``dataschema``. The message names
    the field, the schema's rule that failed, and why validation is on (``route``'s rule, or the
    setting). Raises ``BroadcasterImproperlyConfigured`` when a library or ``SCHEMAS`` is wrong.
    """
    why = f"ROUTES rule {route.number}" if route and route.validate_data else "the setting"
    for name, schema in _schemas(event, typed):
        error = _first_error(schema, event.data)
        if error is not None:
            raise InvalidEvent(
                f"data of the {event.event_type!r} event does not match {name}: at "
                f"{error.json_path}, {error.message} (its rule {error.validator!r}; "
                f"VALIDATE_DATA is on by {why})."
            )


def _schemas(event: CloudEvent, typed: type | None) -> list[tuple[str, Schema]]:
    found: list[tuple[str, Schema]] = []
    if typed is not None:
        found.append((f"the schema of {typed.__qualname__}", data_schema(typed)))
    if event.dataschema is not None:
        registered = registered_schemas().get(event.dataschema)
        if registered is not None:
            found.append((f"the schema {event.dataschema}", registered))
    return found


def _first_error(schema: Schema, data: Any) -> Any:
    """Return jsonschema's most relevant error of ``data`` against ``schema``, or ``None``."""
    from jsonschema.exceptions import best_match

    return best_match(_validator(schema).iter_errors(data))


def _validator(schema: Schema) -> Any:
    kept = _validators.get(id(schema))
    if kept is not None and kept[0] is schema:
        return kept[1]
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    _validators[id(schema)] = (schema, validator)
    return validator


def schema_problem(schema: Schema) -> str | None:
    """Return why ``schema`` is not a valid JSON Schema, or ``None`` when it is (or when
    jsonschema is missing: that has its own check)."""
    try:
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for
    except ImportError:
        return None
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return f"is not a valid JSON Schema: {exc.message}"
    return None
