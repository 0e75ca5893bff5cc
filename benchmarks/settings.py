"""Django settings for the benchmarks and the worker subprocesses they start.

Everything comes from the environment, which :mod:`benchmarks.services` and
:mod:`benchmarks.database` prepare: ``DATABASE_URL`` (PostgreSQL; its database is only used to
create the benchmark databases), ``BENCH_DATABASE`` and ``BENCH_HISTORY_DATABASE`` (the names of
the databases the benchmarks use) and ``BENCH_BACKENDS`` (the ``BROADCASTER["BACKENDS"]`` dict as
JSON; the in-memory backend when unset).
"""

import json
import os
from urllib.parse import urlsplit

SECRET_KEY = "benchmarks-only-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django_broadcaster"]


def _database(name: str) -> dict[str, object]:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


DATABASES = {
    "default": _database(os.environ.get("BENCH_DATABASE", "bench_outbox")),
    "history": _database(os.environ.get("BENCH_HISTORY_DATABASE", "bench_outbox_history")),
}

BROADCASTER = {
    "BACKENDS": json.loads(os.environ.get("BENCH_BACKENDS", "null"))
    or {"memory": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}},
}
