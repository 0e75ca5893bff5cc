"""Settings of the example shop.

SQLite in ``example/db.sqlite3``. The outbox's backends are chosen with one environment variable:

    SHOP_BROADCASTER=console        (default) print each event as CloudEvents JSON; no server
    SHOP_BROADCASTER=redis          XADD to the stream "events" at REDIS_URL
    SHOP_BROADCASTER=kafka          produce to the topic "events" at KAFKA_BOOTSTRAP_SERVERS
    SHOP_BROADCASTER=redis,kafka    both (any comma-separated combination works)
    SHOP_BROADCASTER=webhook        POST signed CloudEvents to SHOP_WEBHOOK_URL (default: the
                                    shop's own /webhooks/ view, on runserver's port 8000)
    SHOP_BROADCASTER=rabbitmq       publish to the exchange amq.topic at RABBITMQ_URL; bind a
                                    queue first (`manage.py consume_rabbitmq --queue shop
                                    --burst` binds one for every event), or the broker returns
                                    each event as unroutable
"""

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "example-only-not-secret")
DEBUG = True
ALLOWED_HOSTS: list[str] = []  # with DEBUG, Django allows localhost
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "shop_project.urls"
WSGI_APPLICATION = "shop_project.wsgi.application"

INSTALLED_APPS = [
    "django_broadcaster",
    "shop",
]
# No CSRF middleware: the only view is a JSON API that uses no cookies or sessions.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

# The webhook backend's secret, which the shop's own receiving view (/webhooks/) also verifies.
SHOP_WEBHOOK_SECRET = os.environ.get(
    "SHOP_WEBHOOK_SECRET", "whsec_ZXhhbXBsZS1zaG9wLW9ubHktbm90LWEtc2VjcmV0ISE="
)

# Every backend the example knows, by the name used in SHOP_BROADCASTER.
SHOP_BACKENDS = {
    "console": {
        "BACKEND": "django_broadcaster.backends.ConsoleBackend",
    },
    "redis": {
        "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
        "OPTIONS": {
            "url": os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
            "stream_name": "events",
        },
    },
    "kafka": {
        "BACKEND": "django_broadcaster.backends.KafkaBackend",
        "OPTIONS": {
            "bootstrap_servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
            "topic": "events",
        },
    },
    "webhook": {
        "BACKEND": "django_broadcaster.backends.WebhookBackend",
        "OPTIONS": {
            "url": os.environ.get("SHOP_WEBHOOK_URL", "http://localhost:8000/webhooks/"),
            "secrets": [SHOP_WEBHOOK_SECRET],
            "mode": os.environ.get("SHOP_WEBHOOK_MODE", "binary"),
        },
    },
    "rabbitmq": {
        "BACKEND": "django_broadcaster.backends.RabbitMQBackend",
        "OPTIONS": {
            "url": os.environ.get("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/%2F"),
            "exchange": "amq.topic",
        },
    },
}


def chosen_backends(names: str) -> dict[str, dict[str, object]]:
    """Return the BACKENDS entries named in ``names`` (comma-separated)."""
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SHOP_BACKENDS))
    if unknown:
        raise ImproperlyConfigured(
            f"SHOP_BROADCASTER names unknown backends {unknown}; "
            f"choose from {sorted(SHOP_BACKENDS)}, e.g. SHOP_BROADCASTER=redis,kafka."
        )
    return {name: SHOP_BACKENDS[name] for name in chosen}


_CHOSEN = chosen_backends(os.environ.get("SHOP_BROADCASTER", "console"))

BROADCASTER = {
    # Orders that a backend refuses for good are printed here as dead letters: the event with
    # why it failed (docs/dead-letters.md). A dead-letter backend gets nothing else.
    "BACKENDS": {
        **_CHOSEN,
        "dead_letters": {"BACKEND": "django_broadcaster.backends.ConsoleBackend"},
    },
    # How long an idle worker waits before looking for due events again (the default).
    "POLL_INTERVAL": timedelta(seconds=1),
    # The first rule an event matches chooses its backends and defaults; an event no rule
    # matches goes to every backend (docs/routing.md).
    "ROUTES": [
        # A cancellation goes ahead of the backlog, and only while the warehouse can act on it.
        {
            "TYPES": "order.cancelled",
            "BACKENDS": list(_CHOSEN),
            "PRIORITY": 50,
            "EXPIRES_AFTER": timedelta(hours=1),
        },
        # Orders are worth more patience with a refusing broker than the default 5 retries;
        # after the last, they go to the dead letters.
        {
            "TYPES": "order.*",
            "BACKENDS": list(_CHOSEN),
            "MAX_RETRIES": 10,
            "DEAD_LETTER": "dead_letters",
        },
    ],
    # The receiving view at /webhooks/ (shop_project/urls.py) accepts what this secret signed.
    "WEBHOOK_RECEIVER": {"SECRETS": [SHOP_WEBHOOK_SECRET]},
    # `manage.py outbox_asyncapi` describes the chosen backends' channels (docs/asyncapi.md).
    "ASYNCAPI": {"TITLE": "Shop events", "VERSION": "1.0.0"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"short": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "short"}},
    "loggers": {
        # Warnings only (a backend that cannot be reached, a handler that failed); set
        # SHOP_LOG_LEVEL=INFO to watch the worker start, stop and count its batches.
        "django_broadcaster": {
            "handlers": ["console"],
            "level": os.environ.get("SHOP_LOG_LEVEL", "WARNING"),
        },
        "shop": {"handlers": ["console"], "level": os.environ.get("SHOP_LOG_LEVEL", "WARNING")},
    },
}
