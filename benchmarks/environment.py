"""Describe where the figures were taken: date, CPUs, server versions, durability settings."""

from __future__ import annotations

import datetime
import platform

from django.db import connection

from . import stream
from .machine import cores


def describe() -> str:
    """Return one line naming the date, the machine and the services' versions and settings."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('fsync'), "
            "current_setting('synchronous_commit')"
        )
        version, fsync, synchronous_commit = cursor.fetchone()
    with stream.client() as redis_client:
        redis_version = redis_client.info("server")["redis_version"]
    return (
        f"{datetime.date.today():%Y-%m-%d}, {cores()} CPUs, "
        f"Python {platform.python_version()}, "
        f"PostgreSQL {version} (fsync={fsync}, synchronous_commit={synchronous_commit}), "
        f"Redis {redis_version}"
    )
