"""System checks E080-E082: validation's libraries, SCHEMAS and ASYNCAPI."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.test import override_settings

from django_broadcaster.schema_checks import check_schemas

BACKENDS = {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}


def ids(**settings: Any) -> list[tuple[str, str]]:
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS, **settings}):
        return [(message.id or "", message.msg) for message in check_schemas()]


def test_good_settings_pass() -> None:
    assert ids() == []
    schemas = {"https://x.example/a.json": {"type": "object"}}
    events = ["tests.asyncapi.events.OrderPlaced"]
    assert ids(VALIDATE_DATA=True, SCHEMAS=schemas, ASYNCAPI={"EVENTS": events}) == []


@pytest.mark.parametrize("where", ["setting", "rule"])
def test_validation_without_jsonschema_fails_the_check(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # importing it raises ImportError
    rule = {"TYPES": "a.*", "BACKENDS": ["default"], "VALIDATE_DATA": True}
    found = ids(VALIDATE_DATA=True) if where == "setting" else ids(ROUTES=[rule])
    assert found == [
        (
            "django_broadcaster.E080",
            "VALIDATE_DATA is on, but jsonschema is not installed: "
            "pip install 'django-broadcaster[schemas]'.",
        )
    ]


def test_without_validation_a_missing_jsonschema_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    assert ids() == []


@pytest.mark.parametrize(
    ("schemas", "expected"),
    [
        ([], "must be a dict of URIs"),
        ({"refund.json": {}}, "'refund.json' is not an absolute URI"),
        ({"https://x/a": "tests.nowhere.SCHEMA"}, "cannot be imported"),
        ({"https://x/a": 3}, "must be a JSON Schema"),
        ({"https://x/a": {"type": "objekt"}}, "is not a valid JSON Schema"),
        ({"https://x/a": "builtins.str"}, "is a class without a JSON Schema"),
    ],
)
def test_bad_schemas_fail_the_check(schemas: object, expected: str) -> None:
    [(code, message)] = ids(SCHEMAS=schemas)
    assert code == "django_broadcaster.E081" and expected in message


@pytest.mark.parametrize(
    ("asyncapi", "expected"),
    [
        ("Shop", "must be a dict"),
        ({"TITEL": "Shop"}, "unknown key 'TITEL'"),
        ({"VERSION": 2}, '["VERSION"] must be a str'),
        ({"EVENTS": "tests.asyncapi.events.OrderPlaced"}, '["EVENTS"] must be a list'),
        ({"EVENTS": ["tests.nowhere.Event"]}, "tests.nowhere.Event"),
        ({"EVENTS": ["builtins.str"]}, "names no CloudEvent type"),
    ],
)
def test_bad_asyncapi_settings_fail_the_check(asyncapi: object, expected: str) -> None:
    [(code, message)] = ids(ASYNCAPI=asyncapi)
    assert code == "django_broadcaster.E082" and expected in message


def test_a_rules_validate_data_must_be_a_bool() -> None:
    from django_broadcaster.checks import check_settings

    rule = {"TYPES": "a.*", "BACKENDS": ["default"], "VALIDATE_DATA": "yes"}
    with override_settings(BROADCASTER={"BACKENDS": BACKENDS, "ROUTES": [rule]}):
        found = [(m.id, m.msg) for m in check_settings()]
    assert found == [
        (
            "django_broadcaster.E050",
            'BROADCASTER["ROUTES"] rule 1: VALIDATE_DATA must be True or False.',
        )
    ]
