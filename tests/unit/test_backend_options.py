"""Options of the Redis and Kafka backends: validation, defaults, secrets kept out of sight.

Nothing here touches the network: building a backend never connects, and the Kafka producer is
replaced by a recorder where ``open()`` is called.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from django_broadcaster.backends import KafkaBackend, RedisStreamBackend, kafka
from django_broadcaster.backends.redis import mask_url
from django_broadcaster.exceptions import BroadcasterImproperlyConfigured

SECRET = "hunter2-s3cret"


class RecordingProducer:
    """Stands in for ``kafka.KafkaProducer``: records its configuration, sends nothing."""

    DEFAULT_CONFIG = kafka.KafkaProducer.DEFAULT_CONFIG
    configs: list[dict[str, Any]] = []

    def __init__(self, **config: Any) -> None:
        self.configs.append(config)

    def close(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def producer_configs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setattr(kafka, "KafkaProducer", RecordingProducer)
    RecordingProducer.configs = []
    return RecordingProducer.configs


# --- Redis -------------------------------------------------------------------------------------


def test_redis_defaults_build_without_connecting() -> None:
    backend = RedisStreamBackend("events", host="127.0.0.1", port=1)
    assert backend.stream_name == "events"
    assert (backend.max_len, backend.retention, backend.max_age) == (None, None, None)
    assert backend.trim() == 0  # nothing to trim by: no word to the (absent) server
    assert backend.open() is True
    assert backend.open() is False
    backend.close()
    backend.close()


def test_redis_unknown_option_names_the_alias() -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match="'audit'.*unknown option 'stream'"):
        RedisStreamBackend("audit", stream="typo")


@pytest.mark.parametrize(
    "options",
    [
        {"host": "redis.internal"},
        {"port": 6380},
        {"db": 2},
        {"password": SECRET},
    ],
)
def test_redis_url_excludes_host_port_db_password(options: dict[str, Any]) -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match="'audit'.*either url or") as info:
        RedisStreamBackend("audit", url="redis://localhost:6379/0", **options)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "http://localhost:6379"}, "url must start with"),
        ({"stream_name": ""}, "stream_name"),
        ({"max_len": 0}, "max_len"),
        ({"max_len": "100"}, "max_len"),
        ({"retention": "acked"}, "retention must be 'consumed' or None"),
        ({"max_age": 3600}, "max_age must be a positive timedelta"),
        ({"max_age": timedelta(0)}, "max_age must be a positive timedelta"),
        ({"max_len": 100, "retention": "consumed"}, "one of max_len, retention and max_age"),
        ({"retention": "consumed", "max_age": timedelta(1)}, "one of max_len, retention"),
        ({"client_options": {"password": SECRET}}, r"\['password'\] as backend options"),
        ({"client_options": {"socket_timeout": 1}}, "socket_timeout"),
    ],
)
def test_redis_invalid_values_are_reported(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match=message) as info:
        RedisStreamBackend("audit", **options)
    assert "'audit'" in str(info.value)
    assert SECRET not in str(info.value)


def test_redis_trimming_options_are_kept() -> None:
    assert RedisStreamBackend("events", max_len=500).max_len == 500
    assert RedisStreamBackend("events", retention="consumed").retention == "consumed"
    assert RedisStreamBackend("events", max_age=timedelta(days=7)).max_age == timedelta(days=7)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"redis://:{SECRET}@cache:6379/0", "redis://:***@cache:6379/0"),
        (f"rediss://app:{SECRET}@cache:6380/1", "rediss://app:***@cache:6380/1"),
        (
            f"redis://cache:6379/0?password={SECRET}&ssl=1",
            "redis://cache:6379/0?password=***&ssl=1",
        ),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=1"),
        # Unencoded '#', '/' or '?': redis-py reads a part of the password as the port, and the
        # rest as the fragment, the path or the query; all of it up to the '@' is masked.
        ("redis://:2024#Winter@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://:S3cr#et99@cache", "redis://:***@cache"),
        ("rediss://app:S3cr/et99@cache:6380/1", "rediss://app:***@cache:6380/1"),
        ("redis://:S3cr?et99@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://:a?b/c#d@cache/0", "redis://:***@cache/0"),
        ("redis://app:p@ss#w0rd@cache/0", "redis://app:***@cache/0"),
        ("unix://:S3cr/et99@/run/redis.sock", "unix://:***@/run/redis.sock"),
        ("redis://cache/0?password=S3cr#et99", "redis://cache/0?password=***#***"),
        # An '@' where redis-py expects one: no password in it.
        ("unix:///run/redis@1.sock?db=1", "unix:///run/redis@1.sock?db=1"),
        ("redis://cache/0?client_name=ops@shop", "redis://cache/0?client_name=ops@shop"),
    ],
)
def test_mask_url_hides_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("url", "codes"),
    [
        ("redis://:2024#Winter@cache:6379/0", "as %23"),
        ("redis://:S3cr#et99@cache", "as %23"),
        ("redis://app:S3cr/et99@cache:6379/0", "as %2F"),
        ("redis://:S3cr?et99@cache:6379/0", "as %3F"),
        ("redis://:a?b/c#d@cache:6379/0", "as %23, %2F and %3F"),
        ("unix://:S3cr/et99@/run/redis.sock", "as %2F"),
        ("redis://cache:6379/0?password=S3cr#et99", "as %23"),
    ],
)
def test_redis_refuses_a_url_whose_password_redis_py_would_misread(url: str, codes: str) -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match="percent-encode") as info:
        RedisStreamBackend("audit", url=url)
    message = str(info.value)
    assert codes in message
    assert "'audit'" in message
    for piece in ("2024#Winter", "Winter", "S3cr", "et99", "a?b/c#d"):
        assert piece not in message


@pytest.mark.parametrize("secret", ["2024#Winter", "S3cr/et99", "S3cr?et99", "p@ss:w%rd"])
def test_redis_percent_encoded_passwords_reach_the_client_and_stay_hidden(secret: str) -> None:
    encoded = quote(secret, safe="")
    backend = RedisStreamBackend("audit", url=f"redis://app:{encoded}@cache:6379/2")
    backend.open()
    kwargs = backend._client.connection_pool.connection_kwargs  # type: ignore[union-attr]
    backend.close()
    assert (kwargs["password"], kwargs["host"], kwargs["db"]) == (secret, "cache", 2)
    assert repr(backend) == (
        "<RedisStreamBackend alias='audit' server='redis://app:***@cache:6379/2' stream='events'>"
    )


def test_redis_url_redis_py_cannot_read_is_refused_at_check_time() -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match="'audit'.*Port could not be cast"):
        RedisStreamBackend("audit", url="redis://cache:63a79/0")


def test_redis_repr_and_logs_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    by_url = RedisStreamBackend("a", url=f"redis://user:{SECRET}@cache:6379/0")
    by_host = RedisStreamBackend("b", host="cache", password=SECRET)
    caplog.set_level(logging.DEBUG, logger="django_broadcaster")
    for backend in (by_url, by_host):
        backend.open()
        backend.close()
    assert (
        repr(by_url)
        == "<RedisStreamBackend alias='a' server='redis://user:***@cache:6379/0' stream='events'>"
    )
    assert SECRET not in repr(by_host)
    assert "cache" in caplog.text
    assert SECRET not in caplog.text


def test_redis_client_options_reach_the_client() -> None:
    backend = RedisStreamBackend(
        "events", url="redis://cache:6379/3", socket_timeout=1.5, client_options={"username": "app"}
    )
    backend.open()
    kwargs = backend._client.connection_pool.connection_kwargs  # type: ignore[union-attr]
    backend.close()
    assert (kwargs["host"], kwargs["db"], kwargs["username"]) == ("cache", 3, "app")
    assert kwargs["socket_timeout"] == 1.5
    assert kwargs["socket_connect_timeout"] == 5.0


# --- Kafka -------------------------------------------------------------------------------------


def kafka_backend(**options: Any) -> KafkaBackend:
    return KafkaBackend("stream", **{"bootstrap_servers": "b:9092", "topic": "orders", **options})


def test_kafka_requires_bootstrap_servers_and_topic() -> None:
    with pytest.raises(TypeError):
        KafkaBackend("stream", topic="orders")  # type: ignore[call-arg]
    with pytest.raises(BroadcasterImproperlyConfigured, match="'stream'.*bootstrap_servers"):
        kafka_backend(bootstrap_servers="")


def test_kafka_unknown_option_names_the_alias() -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match="'stream'.*unknown option 'mode'"):
        kafka_backend(mode="binary")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"topic": "orders events"}, "topic must be"),
        ({"topic": ".."}, "topic must be"),
        ({"topic": "x" * 250}, "topic must be"),
        ({"content_mode": "batch"}, "content_mode must be one of"),
        ({"send_timeout": 0}, "send_timeout"),
        ({"producer_options": {"value_serializer": str.encode}}, "must not set"),
        ({"producer_options": {"bootstrap_servers": "other:9092"}}, "must not set"),
    ],
)
def test_kafka_invalid_values_are_reported(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match=message) as info:
        kafka_backend(**options)
    assert "'stream'" in str(info.value)


def test_kafka_unknown_producer_option_is_named_but_its_value_is_not() -> None:
    with pytest.raises(BroadcasterImproperlyConfigured, match="sasl_plain_pasword") as info:
        kafka_backend(producer_options={"sasl_plain_pasword": SECRET})
    assert SECRET not in str(info.value)


def test_kafka_defaults_reach_the_producer(producer_configs: list[dict[str, Any]]) -> None:
    backend = kafka_backend(send_timeout=4)
    assert backend.open() is True
    assert backend.open() is False
    backend.close()
    backend.close()
    config = producer_configs[0]
    assert config["bootstrap_servers"] == "b:9092"
    assert (config["acks"], config["enable_idempotence"], config["linger_ms"]) == ("all", True, 10)
    assert config["max_block_ms"] == config["request_timeout_ms"] == 4000
    assert config["delivery_timeout_ms"] == 4010  # linger_ms + request_timeout_ms
    assert set(config) <= set(RecordingProducer.DEFAULT_CONFIG) | {"bootstrap_servers"}


def test_kafka_producer_options_override_defaults(producer_configs: list[dict[str, Any]]) -> None:
    kafka_backend(producer_options={"acks": 1, "linger_ms": 50, "compression_type": "gzip"}).open()
    config = producer_configs[0]
    assert (config["acks"], config["linger_ms"], config["compression_type"]) == (1, 50, "gzip")
    assert config["delivery_timeout_ms"] == 50 + config["request_timeout_ms"]


def test_kafka_repr_and_logs_never_show_sasl_secrets(
    producer_configs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_broadcaster")
    backend = kafka_backend(
        producer_options={
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "app",
            "sasl_plain_password": SECRET,
        }
    )
    backend.open()
    backend.close()
    assert producer_configs[0]["sasl_plain_password"] == SECRET
    assert repr(backend) == (
        "<KafkaBackend alias='stream' bootstrap_servers='b:9092' topic='orders' "
        "content_mode='binary'>"
    )
    assert "b:9092" in caplog.text
    assert SECRET not in caplog.text


# --- Missing client libraries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "backend", "options", "extra"),
    [
        ("redis", "RedisStreamBackend", {}, "redis"),
        ("kafka", "KafkaBackend", {"bootstrap_servers": "b:9092", "topic": "t"}, "kafka"),
    ],
)
def test_missing_client_library_says_what_to_install(
    package: str, backend: str, options: dict[str, Any], extra: str
) -> None:
    """Run in a fresh interpreter where importing ``package`` fails, as when it is absent."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{package!r}] = None  # makes "import {package}" raise ImportError
        from django_broadcaster.backends import create_backend
        from django_broadcaster.conf import BackendConfig
        from django_broadcaster.exceptions import BroadcasterImproperlyConfigured
        config = BackendConfig("out", "django_broadcaster.backends.{backend}", {options!r})
        try:
            create_backend(config)
        except BroadcasterImproperlyConfigured as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert f"pip install 'django-broadcaster[{extra}]'" in result.stdout
    assert "'out'" in result.stdout
