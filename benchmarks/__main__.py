"""``python -m benchmarks``: run every measurement and print one table of figures.

    python -m benchmarks                  # the full run (about 15 minutes on 2 cores)
    python -m benchmarks --smoke          # everything at a tiny size, for CI (no figure means much)
    python -m benchmarks --only redis     # one measurement (repeat --only for more)
    python -m benchmarks --production     # the long production-shaped ones (longtx, load, ...)
    python -m benchmarks --compare main   # every figure of commit main and of this tree, together

Uses DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS and RABBITMQ_URL when all are set, else
starts throwaway services with scripts/services. ``BENCH_SCALE=smoke`` does what ``--smoke``
does. Exits 1 when a measurement fails; a goal that is not met is reported in the table, not in
the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace

from .compare import compare
from .report import Figure, format_table
from .scale import FULL, SMOKE, Scale
from .services import running_services

#: Each measurement's name and module (imported once Django is set up).
MEASUREMENTS = {
    "redis": "redis_drain",
    "routed": "routed_drain",
    "kafka": "kafka_drain",
    "webhook": "webhook_drain",
    "rabbitmq": "rabbitmq_drain",
    "publish": "publish_cost",
    "latency": "latency",
    "claim": "claim_cost",
    "priority": "priority_burst",
    "scale-out": "scale_out",
    "memory": "memory",
    "longtx": "long_transaction",
    "load": "load_latency",
    "scale-out-many": "many_workers",
    "backlog": "backlog",
    "cleanup": "cleanup",
}
#: The production-shaped measurements: too long for every run (docs/performance.md says how
#: long), so they run with ``--production`` or when named with ``--only``.
PRODUCTION = ("longtx", "load", "scale-out-many", "backlog", "cleanup")
#: The measurements that raised, in this run.
FAILED: list[str] = []
DATABASES = {"default": "bench_outbox", "history": "bench_outbox_history"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen measurements, print the table, return the exit status."""
    args = _parser().parse_args(argv)
    # A plain SIGTERM would skip the clean-up: stopping workers, services, dropping databases.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    scale = SMOKE if args.smoke or os.environ.get("BENCH_SCALE") == "smoke" else FULL
    if args.compare:
        only = args.only or (list(PRODUCTION) if args.production else [])
        return compare(args.compare, only, smoke=scale == SMOKE, rounds=args.rounds or scale.rounds)
    if args.rounds:
        scale = replace(scale, rounds=args.rounds)
    started = time.monotonic()
    with running_services():
        where, figures = _run(args.only or _default_names(args.production), scale)
    size = "smoke" if scale == SMOKE else "full"
    print(f"{where}; {size} run, {scale.rounds} round(s), {time.monotonic() - started:.0f} s\n")
    print(format_table(figures))
    if FAILED:
        print(f"\nFailed (see the messages above): {', '.join(FAILED)}")
    return 1 if FAILED else 0


def _run(names: Sequence[str], scale: Scale) -> tuple[str, list[Figure]]:
    """Return where the measurements ran (see :func:`describe`) and the figures."""
    from .database import drop_databases, exclusive_run, migrate, recreate_databases
    from .environment import describe

    _setup_django()
    with exclusive_run():
        recreate_databases(DATABASES.values())
        figures: list[Figure] = []
        try:
            for alias in DATABASES:
                migrate(alias)
            where = describe()
            for name in names:
                _log(f"{name}: measuring")
                figures += _measure(name, scale)
        finally:
            drop_databases(DATABASES.values())
    return where, figures


def _measure(name: str, scale: Scale) -> list[Figure]:
    """Return the figures of measurement ``name``; on failure log why and return none."""
    module = importlib.import_module(f"benchmarks.{MEASUREMENTS[name]}")
    try:
        figures: list[Figure] = module.measure(scale)
    except Exception:
        _log(f"{name}: FAILED\n{traceback.format_exc()}")
        FAILED.append(name)
        return []
    return figures


def _default_names(production: bool) -> list[str]:
    """Return the measurements a run without ``--only`` makes."""
    if production:
        return list(PRODUCTION)
    return [name for name in MEASUREMENTS if name not in PRODUCTION]


def _setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_DATABASE"] = DATABASES["default"]
    os.environ["BENCH_HISTORY_DATABASE"] = DATABASES["history"]
    import django

    django.setup()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--only", action="append", choices=list(MEASUREMENTS), help="run only NAME")
    parser.add_argument(
        "--production", action="store_true", help="run the production-shaped measurements only"
    )
    parser.add_argument("--rounds", type=int, help="alternating rounds per ratio (default 3)")
    parser.add_argument(
        "--compare", metavar="REF", help="run commit REF's benchmarks and this tree's in turn"
    )
    return parser


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
