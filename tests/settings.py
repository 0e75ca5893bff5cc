"""Settings for the test suite.

PostgreSQL when ``DATABASE_URL`` is set (``scripts/test`` starts one and sets it), SQLite
otherwise. Redis and Kafka are read from ``REDIS_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` by the
fixtures in ``tests/conftest.py``.
"""

import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "tests.urls"
# pytest-django's live_server (the browser tests) serves STATIC_URL; it must be set.
STATIC_URL = "static/"


def _database_from_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/") or "postgres",
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "TEST": {"NAME": f"test_{parts.path.lstrip('/') or 'postgres'}_{os.getpid()}"},
    }


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": _database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "test.sqlite3",
            # A file, not :memory:, so that worker subprocesses see the test database.
            "TEST": {"NAME": str(BASE_DIR / f"test_{os.getpid()}.sqlite3")},
            "OPTIONS": {"timeout": 20},
        }
    }

# A worker subprocess started by a test uses that test's database and backends.
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["TEST_DATABASE_NAME"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # So that live_server serves the admin's CSS and ours to the browser tests.
    "django.contrib.staticfiles",
    "django_broadcaster",
]
# More apps for a worker subprocess, as a JSON list: tests/faults registers its handlers this way.
INSTALLED_APPS += json.loads(os.environ.get("TEST_EXTRA_APPS", "[]"))
# A LOGGING setting for a worker subprocess, as JSON: the tests of the worker's log set-up.
if os.environ.get("TEST_LOGGING"):
    LOGGING = json.loads(os.environ["TEST_LOGGING"])
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

BROADCASTER = {
    "BACKENDS": json.loads(os.environ.get("TEST_BROADCASTER_BACKENDS", "null"))
    or {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}},
}
# More BROADCASTER keys for a worker subprocess, as JSON; durations are given in seconds.
_DURATIONS = {
    "POLL_INTERVAL",
    "LEASE_DURATION",
    "RETRY_BASE_DELAY",
    "RETRY_MAX_DELAY",
    "BREAKER_BASE_DELAY",
    "BREAKER_MAX_DELAY",
    "SEND_DEADLINE",
    "HANDLER_TIMEOUT",
    "SHUTDOWN_TIMEOUT",
    "CLEANUP_AFTER",
    "CLEANUP_INTERVAL",
}
for _key, _value in json.loads(os.environ.get("TEST_BROADCASTER_SETTINGS", "{}")).items():
    BROADCASTER[_key] = (
        timedelta(seconds=_value) if _key in _DURATIONS and _value is not None else _value
    )

# The webhook tests' receiver (tests/webhooks): its secrets, the first one the senders' too.
WEBHOOK_SECRET = "whsec_dGVzdHMtb25seS13ZWJob29rLXNlY3JldC0zMi1ieXRlcyE="
WEBHOOK_OLD_SECRET = "whsec_b2xkLXRlc3RzLW9ubHktd2ViaG9vay1zZWNyZXQtMzJi"
BROADCASTER["WEBHOOK_RECEIVER"] = {"SECRETS": [WEBHOOK_SECRET, WEBHOOK_OLD_SECRET]}
