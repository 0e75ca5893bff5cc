"""The package's pytest plugin, run by pytest itself (``pytester``) on test files of its own."""

import pytest

pytest_plugins = ["pytester"]

TWO_TESTS = """
from django_broadcaster.backends import locmem


def test_a_delivery_fills_the_outbox():
    locmem.outbox.append("an event")


def test_the_next_test_starts_with_an_empty_outbox():
    assert locmem.outbox == []
"""


def test_the_locmem_outbox_is_emptied_before_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_outbox=TWO_TESTS)
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:django")
    result.assert_outcomes(passed=2)
