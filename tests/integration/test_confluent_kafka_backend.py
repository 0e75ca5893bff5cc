"""ConfluentKafkaBackend: what concerns confluent-kafka (librdkafka) alone.

The messages, an oversize message and an unreachable cluster are checked for both backends in
``test_kafka_backend.py``. Here: errors (a producer rebuilt after an outage, credentials kept
out of errors and logs), options
(checked by librdkafka without connecting, kafka-python's security names) and the message given
when confluent-kafka is missing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from django_broadcaster.backends.kafka import ConfluentKafkaBackend
from django_broadcaster.exceptions import (
    BackendUnavailable,
    BroadcasterImproperlyConfigured,
)
from tests.factories import published_event
from tests.integration.test_kafka_backend import (
    closed_port,
    consume,
    require_confluent_kafka,
)

# Imported under a name pytest does not collect, so that it runs only where it is called here.
from tests.unit.test_backend_options import (
    test_missing_client_library_says_what_to_install as missing_library_check,
)

SECRET = "S3cret-Pa55word"


@pytest.fixture(autouse=True)
def _confluent_kafka() -> None:
    require_confluent_kafka()


def confluent_backend(servers: str, topic: str, **options: Any) -> ConfluentKafkaBackend:
    return ConfluentKafkaBackend("kafka", bootstrap_servers=servers, topic=topic, **options)


# --- Errors ------------------------------------------------------------------------------------


class StuckProducer:
    """Wraps a real producer whose messages are never acknowledged, as in an outage."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    def produce(self, *args: Any, **kwargs: Any) -> None:
        pass

    def flush(self, timeout: float | None = None) -> int:
        return 1

    def purge(self) -> None:
        self.producer.purge()

    def poll(self, timeout: float | None = None) -> int:
        return int(self.producer.poll(0))


@pytest.mark.kafka
def test_after_an_outage_the_next_batch_gets_a_new_producer(
    kafka_bootstrap_servers: str, unique_name: str
) -> None:
    first, second = published_event(), published_event()
    with confluent_backend(kafka_bootstrap_servers, unique_name) as backend:
        stuck = StuckProducer(backend._producer)
        backend._producer = stuck
        with pytest.raises(BackendUnavailable, match="1 messages unacknowledged"):
            backend.send_batch([first])
        assert backend._producer is None

        assert backend.send_batch([second]) == {}
        assert backend._producer is not None and backend._producer is not stuck

    [record] = consume(kafka_bootstrap_servers, unique_name, 1)
    assert dict(record.headers)["ce_id"] == second.id.encode()


def test_credentials_never_reach_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    backend = confluent_backend(
        f"127.0.0.1:{closed_port()}",
        "secrets",
        send_timeout=1,
        producer_options={
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "user",
            "sasl_plain_password": SECRET,
        },
    )
    with pytest.raises(BackendUnavailable) as info:
        backend.send_batch([published_event()])
    backend.close()

    assert "Connection refused" in str(info.value)  # librdkafka's reason reaches the error
    assert SECRET not in str(info.value)
    assert SECRET not in repr(backend)
    assert "127.0.0.1" in caplog.text
    assert SECRET not in caplog.text


# --- Options -----------------------------------------------------------------------------------


def test_defaults_and_kafka_python_security_names_reach_librdkafka() -> None:
    backend = confluent_backend(
        "b:9092",
        "orders",
        send_timeout=4,
        producer_options={
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "shop",
            "sasl_plain_password": SECRET,
            "ssl_cafile": "/etc/ssl/certs/kafka-ca.pem",  # need not exist to build the backend
            "ssl_check_hostname": False,
            "linger.ms": 50,
        },
    )
    config = backend._producer_config
    assert (config["acks"], config["enable.idempotence"], config["linger.ms"]) == ("all", True, 50)
    assert config["message.timeout.ms"] == 4000
    assert config["client.id"] == "django-broadcaster-kafka"
    assert config["security.protocol"] == "SASL_SSL"
    assert (config["sasl.username"], config["sasl.password"]) == ("shop", SECRET)
    assert config["ssl.ca.location"] == "/etc/ssl/certs/kafka-ca.pem"
    assert config["ssl.endpoint.identification.algorithm"] == "none"
    assert "sasl_plain_password" not in config


@pytest.mark.parametrize(
    ("producer_options", "named"),
    [
        ({"linger_ms": 5}, "linger_ms"),  # kafka-python's name for a tuning property
        ({"sasl.pasword": SECRET}, "sasl.pasword"),
        ({"acks": "every-" + SECRET}, "acks"),
        ({"bootstrap.servers": "other:9092"}, "bootstrap.servers"),
    ],
)
def test_a_bad_producer_option_is_named_when_the_backend_is_built(
    producer_options: dict[str, Any], named: str
) -> None:
    started = time.monotonic()
    with pytest.raises(BroadcasterImproperlyConfigured) as info:
        confluent_backend("b:9092", "orders", producer_options=producer_options)

    assert time.monotonic() - started < 1  # librdkafka checks them without connecting
    message = str(info.value)
    assert "'kafka'" in message
    assert named in message  # "acks" is reported as librdkafka's "request.required.acks"
    assert SECRET not in message


def test_repr_names_the_class() -> None:
    assert repr(confluent_backend("b:9092", "orders")) == (
        "<ConfluentKafkaBackend alias='kafka' bootstrap_servers='b:9092' topic='orders' "
        "content_mode='binary'>"
    )


def test_missing_confluent_kafka_says_what_to_install() -> None:
    """Same check as for the other client libraries, in a fresh interpreter without it."""
    missing_library_check(
        "confluent_kafka",
        "kafka.ConfluentKafkaBackend",
        {"bootstrap_servers": "b:9092", "topic": "t"},
        "confluent",
    )
