"""Every user of an optional library says which extra installs it, in the same words.

The backends are checked in a fresh interpreter (tests/unit/test_backend_options.py); here the
import error each module kept is replaced, as if its library were missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from django_broadcaster import telemetry
from django_broadcaster.consumers import kafka as kafka_consumers
from django_broadcaster.consumers import redis as redis_consumers
from django_broadcaster.exceptions import BroadcasterImproperlyConfigured, missing_library

MISSING = ImportError("No module named 'it'")


def test_the_message_names_the_user_the_package_and_the_extra() -> None:
    error = missing_library("Backend 'out' (RedisStreamBackend)", "redis", "redis")
    assert str(error) == (
        "Backend 'out' (RedisStreamBackend) needs the redis package: "
        "pip install 'django-broadcaster[redis]'."
    )


@pytest.mark.parametrize(
    ("module", "name", "build", "expected"),
    [
        (
            redis_consumers,
            "_MISSING",
            lambda: redis_consumers.RedisStreamConsumer(None, "s", "g"),
            "RedisStreamConsumer needs the redis package: pip install 'django-broadcaster[redis]'",
        ),
        (
            kafka_consumers,
            "_MISSING",
            lambda: kafka_consumers.KafkaTopicConsumer("b:9092", "t", "g"),
            "KafkaTopicConsumer needs the kafka-python package: "
            "pip install 'django-broadcaster[kafka]'",
        ),
        (
            telemetry,
            "_NO_METRICS",
            lambda: telemetry.serve_metrics(0, "127.0.0.1"),
            "--metrics-port needs the prometheus-client package: "
            "pip install 'django-broadcaster[metrics]'",
        ),
    ],
)
def test_a_missing_library_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    name: str,
    build: Callable[[], object],
    expected: str,
) -> None:
    monkeypatch.setattr(module, name, MISSING)
    if module is telemetry:
        monkeypatch.setattr(telemetry, "prometheus_client", None)
    with pytest.raises(BroadcasterImproperlyConfigured, match=re.escape(expected)) as info:
        build()
    assert info.value.__cause__ is MISSING
