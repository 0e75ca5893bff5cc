"""Which measurements a run makes (benchmarks/__main__.py)."""

from benchmarks.__main__ import MEASUREMENTS, PRODUCTION, _default_names


def test_a_plain_run_leaves_the_production_shaped_measurements_out() -> None:
    names = _default_names(production=False)
    assert names and not set(names) & set(PRODUCTION)
    assert set(names) | set(PRODUCTION) == set(MEASUREMENTS)


def test_production_runs_only_the_production_shaped_measurements() -> None:
    assert _default_names(production=True) == list(PRODUCTION)
