"""Django settings for django-broadcaster 0.1.1, run from its own virtual environment.

The worker runs with this directory as its working directory, so that ``django_broadcaster`` is
0.1.1's installed package and not the repository's. 0.1.1 reads ``OUTBOX_PUBLISHERS`` and its
Redis backend takes ``host``/``port``/``db`` (no URL). Environment: ``DATABASE_URL``,
``BENCH_LEGACY_DATABASE``, ``REDIS_URL`` and ``BENCH_STREAM``.
"""

import os
from urllib.parse import urlsplit

SECRET_KEY = "benchmarks-only-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_broadcaster"]

_pg = urlsplit(os.environ["DATABASE_URL"])
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_LEGACY_DATABASE", "bench_outbox_011"),
        "USER": _pg.username or "",
        "PASSWORD": _pg.password or "",
        "HOST": _pg.hostname or "",
        "PORT": str(_pg.port or ""),
    }
}

_redis = urlsplit(os.environ["REDIS_URL"])
OUTBOX_PUBLISHERS = {
    "redis": {
        "BACKEND": "django_broadcaster.backends.RedisStreamBackend",
        "OPTIONS": {
            "host": _redis.hostname,
            "port": _redis.port or 6379,
            "db": int(_redis.path.lstrip("/") or 0),
            "stream_name": os.environ.get("BENCH_STREAM", "bench-events"),
            "max_len": None,  # keep every entry, so that the benchmark can count them
        },
    }
}
