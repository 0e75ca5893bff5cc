"""System checks of schema validation and of the AsyncAPI document's settings.

- ``django_broadcaster.E080``: ``VALIDATE_DATA`` is on (in the setting or a rule of ``ROUTES``)
  while a library it needs (jsonschema, pydantic: the ``schemas`` extra) is not installed.
- ``django_broadcaster.E081``: ``SCHEMAS`` is wrong: not a dict, a key that is not an absolute
  URI, a value that does not import, or that is not a valid JSON Schema.
- ``django_broadcaster.E082``: ``ASYNCAPI`` is wrong: not a dict, an unknown key, a value of the
  wrong type, or an entry of ``EVENTS`` that is not a typed event class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, register

from .asyncapi import options_problems
from .conf import SETTING_NAME, raw_settings
from .schemas import EXTRA, load_schemas, missing_libraries, validation_wanted
from .validation import schema_problem

HINT = "See Validating event data in the django-broadcaster documentation."
ASYNCAPI_HINT = "See AsyncAPI in the django-broadcaster documentation."


@register()
def check_schemas(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report a missing library of ``VALIDATE_DATA``, and problems of ``SCHEMAS`` and
    ``ASYNCAPI``."""
    raw = raw_settings()
    messages: list[CheckMessage] = [
        Error(m, hint=HINT, id="django_broadcaster.E080") for m in _library_errors(raw)
    ]
    messages += [Error(m, hint=HINT, id="django_broadcaster.E081") for m in _schemas_errors(raw)]
    return messages + [
        Error(m, hint=ASYNCAPI_HINT, id="django_broadcaster.E082")
        for m in options_problems(raw.get("ASYNCAPI"))
    ]


def _library_errors(raw: Mapping[str, Any]) -> list[str]:
    if not validation_wanted(raw):
        return []
    return [
        f"VALIDATE_DATA is on, but {name} is not installed: pip install '{EXTRA}'."
        for name in missing_libraries()
    ]


def _schemas_errors(raw: Any) -> list[str]:
    schemas, problems = load_schemas(raw.get("SCHEMAS"))
    for uri, schema in schemas.items():
        problem = schema_problem(schema)
        if problem:
            problems.append(f'{SETTING_NAME}["SCHEMAS"][{uri!r}] {problem}.')
    return problems
