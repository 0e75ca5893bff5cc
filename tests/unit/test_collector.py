"""Tuning the garbage collector for a worker process."""

import gc

import pytest

from django_broadcaster.worker.collector import YOUNG_THRESHOLD, tune_for_worker

pytestmark = pytest.mark.usefixtures("garbage_collector_restored")


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_objects_alive_at_start_up_are_frozen() -> None:
    kept = Cycle()
    tune_for_worker()
    assert gc.get_freeze_count() > 0
    assert all(found is not kept for found in gc.get_objects())  # frozen ones are not listed


def test_start_up_garbage_is_collected_rather_than_frozen() -> None:
    gc.disable()  # only the tuning's own collection may free the cycle
    try:
        Cycle()  # unreachable at once, but a cycle: only the collector frees it
        tune_for_worker()
        gc.unfreeze()  # a frozen cycle would be listed again
        assert not any(isinstance(found, Cycle) for found in gc.get_objects())
    finally:
        gc.enable()


def test_only_the_youngest_threshold_changes_and_the_collector_stays_on() -> None:
    _, middle, oldest = gc.get_threshold()
    tune_for_worker()
    tune_for_worker()  # safe twice
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, oldest)
    assert gc.isenabled()


def test_cycles_made_after_tuning_are_still_collected() -> None:
    tune_for_worker()
    Cycle()
    gc.collect()
    assert not any(isinstance(found, Cycle) for found in gc.get_objects())


@pytest.mark.parametrize("young", [0, YOUNG_THRESHOLD * 5], ids=["automatic off", "higher"])
def test_a_threshold_the_process_chose_is_kept(young: int) -> None:
    gc.set_threshold(young)
    tune_for_worker()
    assert gc.get_threshold()[0] == young
