"""The example shop switches to webhooks with ``SHOP_BROADCASTER=webhook`` and passes its checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shop(*command: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT / "example",
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_shop_sends_and_receives_webhooks_when_told() -> None:
    script = (
        "from django.conf import settings; from django.urls import resolve; "
        "print(settings.BROADCASTER['BACKENDS']['webhook']['BACKEND']); "
        "print(resolve('/webhooks/').func.view_class.__name__)"
    )
    run = shop("shell", "-c", script, SHOP_BROADCASTER="webhook")
    assert run.returncode == 0, run.stderr
    # Django 5.2 and later print how many objects the shell imported first.
    assert run.stdout.split()[-2:] == [
        "django_broadcaster.backends.WebhookBackend",
        "WebhookReceiver",
    ]
    check = shop("check", "--fail-level", "WARNING", SHOP_BROADCASTER="webhook")
    assert check.returncode == 0, check.stderr
