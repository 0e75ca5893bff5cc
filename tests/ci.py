"""The one rule for tests whose service or tool is missing: skip locally, fail in CI."""

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Return whether the suite runs in CI (``CI=true``)."""
    return os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> NoReturn:
    """Skip the current test, or fail it under ``CI=true``: CI must never pass by skipping."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing service is an error)", pytrace=False)
    pytest.skip(reason)
