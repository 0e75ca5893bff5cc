"""Bad settings are reported by ``manage.py check``, with ids, before the worker ever runs."""

import sys
from datetime import timedelta

import pytest
from django.core.checks import CheckMessage
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
        ({"PROGRESS_INTERVAL": timedelta(seconds=30)}, []),
        ({"PROGRESS_INTERVAL": None}, []),
        ({"PROGRESS_INTERVAL": 5}, ["django_broadcaster.E001"]),
        ({"PROGRESS_INTERVAL": timedelta(0)}, ["django_broadcaster.E001"]),
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


def test_a_redis_password_redis_py_would_misread_is_a_check_error() -> None:
    url = "redis://:S3cr#et99@cache:6379/0"
    redis = {"BACKEND": "django_broadcaster.backends.RedisStreamBackend", "OPTIONS": {"url": url}}
    with override_settings(BROADCASTER={"BACKENDS": {"events": redis}}):
        [error] = check_settings()
    assert error.id == "django_broadcaster.E003"
    assert "percent-encode it as %23" in error.msg
    assert "S3cr" not in error.msg and "et99" not in error.msg


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"max_len": 10_000}, ["django_broadcaster.W004"]),
        ({}, []),
        ({"retention": "consumed"}, []),
        ({"max_age": timedelta(days=7)}, []),
    ],
)
def test_a_redis_max_len_is_a_warning(options: dict[str, object], expected: list[str]) -> None:
    redis = {"BACKEND": "django_broadcaster.backends.RedisStreamBackend", "OPTIONS": options}
    with override_settings(BROADCASTER={"BACKENDS": {"events": redis}}):
        messages = check_settings()
    assert [message.id for message in messages] == expected
    for message in messages:
        assert "'events'" in message.msg and "10000 entries" in message.msg
        assert "retention='consumed'" in (message.hint or "")


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
    short = {
        "LEASE_DURATION": timedelta(seconds=5),
        "SEND_DEADLINE": timedelta(seconds=2),
        "HANDLER_TIMEOUT": None,
    }
    assert ids(BROADCASTER=short) == ["django_broadcaster.W002"]
    assert ids(BROADCASTER={**short, "LEASE_DURATION": timedelta(seconds=9)}) == []


def test_eager_mode_without_debug_is_a_warning() -> None:
    [warning] = [m for m in _messages(BROADCASTER={"EAGER": True}, DEBUG=False)]
    assert warning.id == "django_broadcaster.W020" and "EAGER" in warning.msg
    assert ids(BROADCASTER={"EAGER": True}, DEBUG=True) == []
    assert ids(BROADCASTER={"EAGER": False}, DEBUG=False) == []
    assert ids(BROADCASTER={"EAGER": 1}) == ["django_broadcaster.E001"]


def _messages(**settings: object) -> list[CheckMessage]:
    with override_settings(**settings):
        return check_settings()


def test_the_lease_must_leave_room_for_a_hung_handler() -> None:
    lease = {"LEASE_DURATION": timedelta(seconds=20), "SEND_DEADLINE": timedelta(seconds=2)}
    assert ids(BROADCASTER={**lease, "HANDLER_TIMEOUT": timedelta(seconds=11)}) == []
    with override_settings(BROADCASTER={**lease, "HANDLER_TIMEOUT": timedelta(seconds=12)}):
        [warning] = check_settings()
    assert warning.id == "django_broadcaster.W002" and "HANDLER_TIMEOUT (0:00:12)" in warning.msg


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(seconds=30), []),
        (None, []),
        (timedelta(0), ["django_broadcaster.E001"]),
        (10, ["django_broadcaster.E001"]),
    ],
    ids=["timedelta", "None", "zero", "a number"],
)
def test_the_handler_timeout_is_a_positive_timedelta_or_none(
    value: object, expected: list[str]
) -> None:
    assert ids(BROADCASTER={"HANDLER_TIMEOUT": value}) == expected


def test_the_handler_timeout_defaults_to_10_seconds() -> None:
    assert get_settings().handler_timeout == timedelta(seconds=10)


def check_failure(**backends: object) -> str:
    """Return what ``manage.py check`` fails with for these ``BACKENDS``."""
    with (
        override_settings(BROADCASTER={"BACKENDS": backends}),
        pytest.raises(SystemCheckError) as info,
    ):
        call_command("check")
    return str(info.value)


def test_an_unknown_option_gets_a_suggestion_and_the_valid_options() -> None:
    redis = "django_broadcaster.backends.RedisStreamBackend"
    output = check_failure(events={"BACKEND": redis, "OPTIONS": {"stream": "orders"}})
    assert (
        "Backend 'events' (RedisStreamBackend): unknown option 'stream' (did you mean "
        "'stream_name'?); the valid options are client_options, connect_timeout, db, host, "
        "max_age, max_len, password, port, retention, socket_timeout, stream_name, url."
    ) in output


def test_a_missing_required_option_is_named() -> None:
    kafka = "django_broadcaster.backends.KafkaBackend"
    output = check_failure(kafka={"BACKEND": kafka, "OPTIONS": {"bootstrap_servers": "b:9092"}})
    assert "Backend 'kafka' (KafkaBackend): missing required option 'topic'." in output
