"""Reading the machine's busy CPU time for the scale-out figures (benchmarks/machine.py)."""

import os

import pytest

from benchmarks.machine import busy_cpu_seconds, cores, process_cpu_seconds

# user nice system idle iowait irq softirq steal guest guest_nice
STAT = "cpu  100 20 30 5000 700 4 6 800 50 0\ncpu0 50 10 15 2500 350 2 3 400 25 0\n"


def test_busy_time_counts_user_nice_system_irq_and_softirq() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    assert busy_cpu_seconds(STAT) == pytest.approx((100 + 20 + 30 + 4 + 6) / ticks)


def test_idle_iowait_steal_and_guest_time_are_not_work() -> None:
    quiet = "cpu  100 20 30 9999 9999 4 6 9999 9999 9999\n"
    assert busy_cpu_seconds(quiet) == busy_cpu_seconds(STAT)


def test_a_text_that_does_not_start_with_the_total_is_refused() -> None:
    with pytest.raises(ValueError, match="cpu total"):
        busy_cpu_seconds("intr 12345\n")


def test_the_machine_s_busy_time_grows_while_this_process_works() -> None:
    before = busy_cpu_seconds()
    spent = os.times()
    while os.times().user + os.times().system - spent.user - spent.system < 0.2:
        pass  # busy work: 200 ms of this process's CPU time, counted in ticks of 10 ms
    assert busy_cpu_seconds() - before >= 0.15  # both clocks count in ticks: allow a few


def online_cpus() -> int:
    with open("/proc/stat") as stat:
        return sum(1 for line in stat if line[:3] == "cpu" and line[3:4].isdigit())


def test_cores_are_those_the_busy_time_counts_every_online_cpu() -> None:
    assert cores() == online_cpus()


def test_cores_count_every_cpu_even_when_this_process_is_pinned_to_one() -> None:
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        assert cores() == online_cpus()  # the services still run on all of them
    finally:
        os.sched_setaffinity(0, allowed)


def test_a_process_s_cpu_time_is_its_user_and_system_time() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    stat = "4242 (python -m x) S 1 4242 4242 0 -1 4194304 900 0 3 0 250 50 7 1 20 0 3 0\n"
    assert process_cpu_seconds(4242, stat) == pytest.approx(300 / os.sysconf("SC_CLK_TCK"))


def test_this_process_s_cpu_time_is_read_from_proc() -> None:
    assert process_cpu_seconds(os.getpid()) > 0
