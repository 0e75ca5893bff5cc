"""Bad settings are reported by ``manage.py check``, with ids, before the worker ever runs."""

import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_broadcaster.checks import check_settings
from django_broadcaster.conf import get_settings
from django_broadcaster.exceptions import BroadcasterImproperlyConfigured

LOCMEM = {"BACKEND": "django_broadcaster.backends.LocMemBackend"}


def ids(**settings: object) -> list[str]:
    with override_settings(**settings):
        return [message.id or "" for message in check_settings()]


def test_the_test_settings_are_clean() -> None:
    assert check_settings() == []


@pytest.mark.parametrize(
    ("broadcaster", "expected"),
    [
        ({"BATCH_SIZ": 10}, ["django_broadcaster.E001"]),
        ({"BATCH_SIZE": "10"}, ["django_broadcaster.E001"]),
        ({"BATCH_SIZE": 0}, ["django_broadcaster.E001"]),
        ({"RETRY_BASE_DELAY": 5}, ["django_broadcaster.E001"]),
        ({"POLL_INTERVAL": timedelta(seconds=-1)}, ["django_broadcaster.E001"]),
        ({"LISTEN": "yes"}, ["django_broadcaster.E001"]),
        ({"LISTEN": 1}, ["django_broadcaster.E001"]),
        ({"LISTEN": False}, []),
        ({"MAX_RETRIES": 2**31}, ["django_broadcaster.E001"]),
        ({"MAX_RETRIES": 2**31 - 1}, []),
        ({"BACKENDS": {"x": "redis"}}, ["django_broadcaster.E002"]),
        ({"BACKENDS": {"x": {"OPTIONS": {}}}}, ["django_broadcaster.E002"]),
        ({"BACKENDS": {"x": {**LOCMEM, "LOCATION": "y"}}}, ["django_broadcaster.E002"]),
        ({"BACKENDS": {"x": {"BACKEND": "nowhere.Backend"}}}, ["django_broadcaster.E003"]),
        (
            {"BACKENDS": {"x": {"BACKEND": "django_broadcaster.models.OutboxEvent"}}},
            ["django_broadcaster.E003"],
        ),
        (
            {"BACKENDS": {"x": {**LOCMEM, "OPTIONS": {"colour": "red"}}}},
            ["django_broadcaster.E003"],
        ),
    ],
)
def test_errors_have_ids(broadcaster: dict[str, object], expected: list[str]) -> None:
    assert ids(BROADCASTER=broadcaster) == expected


def test_naive_times_are_a_check_error() -> None:
    assert ids(USE_TZ=False) == ["django_broadcaster.E004"]
    with override_settings(USE_TZ=False), pytest.raises(SystemCheckError, match="USE_TZ"):
        call_command("check")
    get_settings()  # cached: overriding USE_TZ must forget it
    with override_settings(USE_TZ=False), pytest.raises(BroadcasterImproperlyConfigured):
        get_settings()


def test_unknown_option_names_the_alias_and_the_option() -> None:
    with override_settings(
        BROADCASTER={"BACKENDS": {"events": {**LOCMEM, "OPTIONS": {"colour": 1}}}}
    ):
        [error] = check_settings()
    assert "'events'" in error.msg and "colour" in error.msg


def test_a_missing_client_library_is_a_check_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes "import redis" fail
    monkeypatch.delitem(sys.modules, "django_broadcaster.backends.redis", raising=False)
    redis = {"BACKEND": "django_broadcaster.backends.RedisStreamBackend"}
    with override_settings(BROADCASTER={"BACKENDS": {"events": redis}}):
        [error] = check_settings()
    assert error.id == "django_broadcaster.E003"
    assert "pip install" in error.msg


def test_the_0_1_setting_still_works_with_a_deprecation_warning() -> None:
    with override_settings(BROADCASTER={}, OUTBOX_PUBLISHERS={"legacy": LOCMEM}):
        assert [m.id for m in check_settings()] == ["django_broadcaster.W001"]
        assert list(get_settings().backends) == ["legacy"]
    with override_settings(BROADCASTER={"BACKENDS": {}}, OUTBOX_PUBLISHERS={"legacy": LOCMEM}):
        [warning] = check_settings()
        assert "ignored" in (warning.hint or "")
        assert list(get_settings().backends) == []


def test_manage_py_check_fails_on_errors() -> None:
    with override_settings(BROADCASTER={"BATCH_SIZE": -1}), pytest.raises(SystemCheckError):
        call_command("check")


def test_get_settings_raises_for_the_worker() -> None:
    with (
        override_settings(BROADCASTER={"BATCH_SIZE": -1}),
        pytest.raises(BroadcasterImproperlyConfigured, match="must not be negative"),
    ):
        get_settings()
    assert get_settings().batch_size == 100  # cache reset once the override ends


def test_cleanup_after_may_be_none_and_the_interval_must_be_positive() -> None:
    assert ids(BROADCASTER={"CLEANUP_AFTER": None}) == []
    assert ids(BROADCASTER={"CLEANUP_INTERVAL": timedelta(0)}) == ["django_broadcaster.E001"]


def test_a_lease_not_well_above_the_send_deadline_is_a_warning() -> None:
    short = {"LEASE_DURATION": timedelta(seconds=5), "SEND_DEADLINE": timedelta(seconds=2)}
    assert ids(BROADCASTER=short) == ["django_broadcaster.W002"]
    assert ids(BROADCASTER={**short, "LEASE_DURATION": timedelta(seconds=9)}) == []
