"""Test support shared by ``tests``, ``tests/faults`` and ``benchmarks``: processes and polling.

:mod:`harness.process` runs a command (the worker, any ``python -m django`` command) as a
subprocess whose output a thread collects; :mod:`harness.polling` waits for a condition that
offers nothing to block on.

It is a package of its own, at the top of the repository, because both sides use it and neither
should depend on the other: ``benchmarks`` must run without pytest, which ``tests`` imports in its
package-level modules and fixtures, and the tests must not import the benchmarks. It imports
nothing but the standard library, and it is not shipped: ``pyproject.toml`` packages only
``django_broadcaster*``. ``pytest`` (``pythonpath = ["."]``) and ``python -m benchmarks`` (run from
the repository root) both find it on the path.
"""
