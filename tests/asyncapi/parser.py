"""Run the official AsyncAPI parser (``@asyncapi/parser``, with node) on a document.

``scripts/asyncapi-parser`` installs it and prints ``ASYNCAPI_PARSER_DIR``; without that
variable the parser is looked for where the script puts it. Without node or the parser the test
skips, and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.ci import missing

SCRIPT = Path(__file__).with_name("parse.cjs")
VERSION = "3.6.0"


def parser_dir() -> Path:
    """Return the directory holding the parser's ``node_modules``, or skip (fail in CI)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    default = Path(os.environ.get("SERVICES_CACHE", cache / "django-broadcaster"))
    found = Path(os.environ.get("ASYNCAPI_PARSER_DIR", default / f"asyncapi-parser-{VERSION}"))
    if shutil.which("node") is None:
        missing("node is not installed (scripts/asyncapi-parser installs it as root)")
    if not (found / "node_modules/@asyncapi/parser").is_dir():
        missing(f"no @asyncapi/parser in {found}: run scripts/asyncapi-parser")
    return found


def diagnostics(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the parser's diagnostics of ``document``."""
    env = {**os.environ, "NODE_PATH": str(parser_dir() / "node_modules")}
    done = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def errors(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the diagnostics of error severity (0) of ``document``."""
    return [found for found in diagnostics(document) if found["severity"] == 0]
