"""The page's ``manage.py shell``: run its fragments and sessions in one namespace, in order.

Started in the fresh project by ``tests.newcomer.follow`` as
``python manage.py shell -c "import runpy; runpy.run_path(THIS_FILE, run_name='__main__')"``,
so it runs where a reader's shell would, with the project's settings. It imports nothing from
the repository: only the standard library and what the project has installed.

Each request is one JSON line on standard input, ``{"kind": "python" | "pycon", "source": ...,
"where": "page.md:LINE"}``; each answer one line, ``ANSWER`` and ``{"ok": bool, "report": str}``
in JSON, on standard output (where ``manage.py shell`` may print a line of its own first).
Anything the blocks print goes to standard error.
"""

import contextlib
import doctest
import io
import json
import os
import sys
import traceback

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
ANSWER = "shell-session-answer: "


def run_python(source: str, where: str, namespace: dict) -> tuple[bool, str]:
    """Run a fragment; return whether it raised nothing, and what it printed or raised."""
    page, _, line = where.rpartition(":")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            # Blank lines first, so that a traceback gives the page's own line numbers.
            exec(compile("\n" * int(line) + source, page, "exec"), namespace)
    except BaseException:  # noqa: BLE001 - a SystemExit in a block is a failure too
        return False, printed.getvalue() + traceback.format_exc()
    return True, printed.getvalue()


def run_pycon(source: str, where: str, namespace: dict) -> tuple[bool, str]:
    """Run a session with doctest; return whether every output matched, and doctest's report."""
    page, _, line = where.rpartition(":")
    test = doctest.DocTestParser().get_doctest(source, namespace, where, page, int(line))
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)
    return runner.failures == 0, report.getvalue()


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    namespace: dict = {"__name__": "__main__"}
    run = {"python": run_python, "pycon": run_pycon}
    for line in sys.stdin:
        request = json.loads(line)
        ok, report = run[request["kind"]](request["source"], request["where"], namespace)
        answers.write(ANSWER + json.dumps({"ok": ok, "report": report}) + "\n")


if __name__ == "__main__":
    main()
