"""Tuning the garbage collector for a worker process."""

import gc
import sys
import weakref

import pytest

from django_broadcaster.worker.gc_tuning import YOUNG_THRESHOLD, tune_for_worker

pytestmark = pytest.mark.usefixtures("garbage_collector_restored")


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_objects_alive_at_start_up_are_frozen() -> None:
    kept = Cycle()
    frozen = gc.get_freeze_count()  # not 0 on Python 3.12, which freezes some objects itself
    tune_for_worker()
    assert gc.get_freeze_count() > frozen
    assert all(found is not kept for found in gc.get_objects())  # frozen ones are not listed


def test_start_up_garbage_is_collected_rather_than_frozen() -> None:
    gc.disable()  # only the tuning's own collection may free the cycle
    Cycle()  # unreachable at once, but a cycle: only the collector frees it
    tune_for_worker()
    gc.unfreeze()  # a frozen cycle would be listed again
    assert not any(isinstance(found, Cycle) for found in gc.get_objects())


def test_only_the_youngest_threshold_changes_and_the_collector_stays_on() -> None:
    _, middle, oldest = gc.get_threshold()
    tune_for_worker()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, oldest)
    assert gc.isenabled()


def test_cycles_made_after_tuning_are_freed_by_the_collector_on_its_own() -> None:
    tune_for_worker()
    cycle = Cycle()
    alive = weakref.ref(cycle)
    del cycle
    containers = [[] for _ in range(YOUNG_THRESHOLD + 100)]  # enough for a young collection
    assert alive() is None
    assert len(containers) > YOUNG_THRESHOLD


@pytest.mark.parametrize("young", [0, YOUNG_THRESHOLD * 5], ids=["automatic off", "higher"])
def test_a_threshold_the_process_chose_is_kept(young: int) -> None:
    gc.set_threshold(young)
    tune_for_worker()
    assert gc.get_threshold()[0] == young


def test_a_free_threaded_build_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    tune_for_worker()
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)
