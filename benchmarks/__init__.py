"""The benchmark suite: every performance figure of the project, measured side by side.

Run ``python -m benchmarks`` (``--help`` for options). Each measurement is a module with a
``measure(scale) -> list[Figure]`` function; :mod:`benchmarks.__main__` runs them and prints one
table. ``ordering.py`` is a stand-alone script with its own command line.
"""
