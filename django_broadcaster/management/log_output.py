"""Logging set-up shared by the long-running commands (the worker and the consumers)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_stderr(verbosity: int) -> None:
    """Show on stderr the log that the project's ``LOGGING`` sends nowhere, from INFO up.

    Nothing changes at verbosity 0, or when the root logger has a handler: then the project
    decided where everything goes. Otherwise (Django's own default configures only its
    ``django`` loggers) a handler on the root logger, set to INFO if still at Python's WARNING,
    shows the package's lines and the project's own alike: a handler's
    ``logging.getLogger(__name__).info(...)`` shows as it would under a root handler of the
    project's. It prints only the records that no handler took on their way up, so a logger the
    project configured is not printed twice. Verbosity 3 sets the package's logger to DEBUG too
    (unless ``LOGGING`` gave it a level): each handler call and each batch's outcomes.
    """
    root = logging.getLogger()
    if not verbosity or root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_unhandled)
    root.addHandler(handler)
    if root.level == logging.WARNING:
        root.setLevel(logging.INFO)
    package = logging.getLogger("django_broadcaster")
    if verbosity > 2 and package.level == logging.NOTSET:
        package.setLevel(logging.DEBUG)


def _unhandled(record: logging.LogRecord) -> bool:
    """Return whether no logger between ``record``'s and the root has a handler."""
    logger = logging.getLogger(record.name)
    while logger.parent is not None:  # the root logger is the only one without a parent
        if logger.handlers:
            return False
        logger = logger.parent
    return True
