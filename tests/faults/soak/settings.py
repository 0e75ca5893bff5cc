"""Settings of the soak's processes: the example project, on the soak's own services.

Every process of the soak (gunicorn serving ``shop_project.wsgi``, the outbox workers, the
consumers, ``migrate``) runs with ``DJANGO_SETTINGS_MODULE=tests.faults.soak.settings`` and
``PYTHONPATH`` holding the repository root and ``example``. The environment says where things are:

    SOAK_DB_PORT, SOAK_DB_NAME     the soak's PostgreSQL; each consumer has a database of its own
    SOAK_REDIS_URL, SOAK_STREAM    the workers' Redis (through the soak's proxy) and stream
    SOAK_KAFKA, SOAK_TOPIC         the Kafka-protocol broker (through the proxy) and topic
"""

import os
from datetime import timedelta

from shop_project.settings import *  # noqa: F403  (the example project, overridden below)
from shop_project.settings import INSTALLED_APPS

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [*INSTALLED_APPS, "tests.faults.soak"]
ROOT_URLCONF = "tests.faults.soak.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("SOAK_DB_NAME", "shop"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("SOAK_DB_PORT", "5432"),
        "OPTIONS": {"connect_timeout": 5},
    }
}

BROADCASTER = {
    "BACKENDS": {
        "redis": {
            "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
            "OPTIONS": {
                "url": os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "stream_name": os.environ.get("SOAK_STREAM", "soak"),
                "max_len": None,
                "socket_timeout": 2,
            },
        },
        "kafka": {
            "BACKEND": "django_broadcaster.backends.KafkaBackend",
            "OPTIONS": {
                "bootstrap_servers": os.environ.get("SOAK_KAFKA", "127.0.0.1:9092"),
                "topic": os.environ.get("SOAK_TOPIC", "soak"),
            },
        },
    },
    "BATCH_SIZE": int(os.environ.get("SOAK_BATCH_SIZE", "50")),
    "POLL_INTERVAL": timedelta(seconds=0.2),
    # Short, so that a killed worker's batch goes out again soon; more than 4 times
    # SEND_DEADLINE plus HANDLER_TIMEOUT, as the check django_broadcaster.W002 asks.
    "LEASE_DURATION": timedelta(seconds=15),
    "SEND_DEADLINE": timedelta(seconds=1),
    "HANDLER_TIMEOUT": timedelta(seconds=2),
    "BREAKER_BASE_DELAY": timedelta(seconds=0.5),
    "BREAKER_MAX_DELAY": timedelta(seconds=3),
}
