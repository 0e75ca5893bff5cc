"""Where a worker's log goes: its own lines, a handler's own logger, and the project's LOGGING.

The worker runs as a subprocess, because in-process pytest's own handlers on the root logger make
the command leave logging alone, as it does for any project that configured a root handler.
"""

import json
from pathlib import Path

import pytest

from django_broadcaster.publishers import publisher
from tests.logging_app import ORDER_TYPE
from tests.workers import start_worker

pytestmark = pytest.mark.django_db(transaction=True)

LOCMEM = {"default": {"BACKEND": "django_broadcaster.backends.LocMemBackend"}}
HANDLER = "tests.logging_app.handlers.log_the_order"


def run_worker(*args: str, env: dict[str, str] | None = None) -> str:
    """Run a burst worker with the logging app's handler; return its output."""
    apps = {"TEST_EXTRA_APPS": json.dumps(["tests.logging_app"])}
    with start_worker("--burst", *args, backends=LOCMEM, env={**apps, **(env or {})}) as worker:
        assert worker.wait() == 0, worker.output()
    return worker.output()


def test_a_handlers_own_info_line_shows_under_the_worker() -> None:
    publisher.publish_event(ORDER_TYPE, "shop", {"order": 42})
    output = run_worker()
    assert "INFO tests.logging_app.handlers: Order 42 received" in output
    assert "INFO django_broadcaster.worker.loop: Outbox worker started" in output


def test_the_stop_line_counts_the_outcomes_in_words() -> None:
    publisher.publish_event(ORDER_TYPE, "shop", {"order": 42})
    output = run_worker()
    assert "Outbox worker stopped after 1 batches: 1 published." in output


def test_verbosity_3_shows_which_handler_ran_on_which_event() -> None:
    row = publisher.publish_event(ORDER_TYPE, "shop", {"order": 42})
    output = run_worker("-v", "3")
    line = f"Handler handler:{HANDLER} handled event {row.id} ({ORDER_TYPE})."
    assert f"DEBUG django_broadcaster.registry: {line}" in output


def test_verbosity_0_adds_no_log_output() -> None:
    publisher.publish_event(ORDER_TYPE, "shop", {"order": 42})
    assert run_worker("-v", "0") == ""


def test_the_projects_logging_is_kept_and_nothing_is_printed_twice(tmp_path: Path) -> None:
    log = tmp_path / "handlers.log"
    logging_setting = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s: %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log)}},
        "loggers": {"tests.logging_app": {"handlers": ["file"], "level": "INFO"}},
    }
    publisher.publish_event(ORDER_TYPE, "shop", {"order": 42})
    output = run_worker(env={"TEST_LOGGING": json.dumps(logging_setting)})
    assert log.read_text() == "Order 42 received\n"
    assert "Order 42 received" not in output  # the project's handler has it
    assert "Outbox worker started" in output  # left without a handler: the worker shows it
