"""Fault-injection drills: the real worker process against real services, with faults injected.

Run them with ``pytest -m faults``; ``FAULTS_SCALE=full`` runs the larger version. See
``docs/reliability.md`` for what each drill shows.
"""
