"""Logging set-up shared by the long-running commands (the worker and the consumers)."""

from __future__ import annotations

import logging


def log_to_stderr(verbosity: int) -> None:
    """Show the package's log on stderr, unless the project configured logging already.

    Nothing is added at verbosity 0, or when the ``django_broadcaster`` logger or the root logger
    has a handler. Verbosity 3 shows DEBUG lines, lower levels INFO.
    """
    logger = logging.getLogger("django_broadcaster")
    if logger.handlers or logging.getLogger().handlers or not verbosity:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 2 else logging.INFO)
