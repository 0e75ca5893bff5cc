"""The dead letters of a batch, handed to their backends' couriers like any other share.

A claimed row past its retries (:func:`~..outbox.dead_letters.retries_spent`) goes to its dead
letters only; each is noted in its outcome under its ``dead-letter:`` name, so what the courier
says of it (delivered, refused, unavailable) is recorded as for any destination.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..events import CloudEvent
from ..outbox.dead_letters import letters, retries_spent
from ..outbox.outcomes import Outcome

#: A call handed to a courier, and the ``(outcome, destination)`` pairs it carries.
Started = tuple[Any, Any, list[tuple[Outcome, str]]]


class _Courier(Protocol):
    def start(self, events: Sequence[CloudEvent]) -> Any: ...


def letter_calls(outcomes: Sequence[Outcome], couriers: Mapping[str, _Courier]) -> list[Started]:
    """Start sending the dead letters of ``outcomes``' rows past their retries, one call per
    alias; return each ``(courier, call, share)``.

    A dead letter never expires: such a row's outcome is made not ``expired``. One whose alias
    has no courier here is refused (a worker given only some backends).
    """
    shares: defaultdict[str, list[tuple[Outcome, str, CloudEvent]]] = defaultdict(list)
    for outcome in (o for o in outcomes if retries_spent(o.row)):
        outcome.expired = False
        for letter in letters(outcome.row):
            if letter.alias in couriers:
                shares[letter.alias].append((outcome, letter.name, letter.event))
            else:
                outcome.errors[letter.name] = f"UnknownBackend: no backend {letter.alias!r} here"
    started = []
    for alias, share in shares.items():
        call = couriers[alias].start([event for _, _, event in share])
        started.append((couriers[alias], call, [(outcome, name) for outcome, name, _ in share]))
    return started
