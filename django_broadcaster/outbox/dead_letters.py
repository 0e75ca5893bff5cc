"""Dead letters on the row: when an event that failed goes on to its dead-letter destinations.

When :func:`~..retry.decide` gives up on a row, :func:`settle` looks up each refusing
destination's ``DEAD_LETTER`` (:func:`~..dead_letters.dead_letter_for`). If one has any, the row
stays ``pending``, due now, with its retries spent: the failed destination's entry gets
``dead_letter`` (the alias) and the row's ``delivery`` a ``dead-letter:<destination>`` entry,
``pending``. A worker that claims a row with its retries spent sends only those dead letters
(:func:`letters`); each is a destination like any other, so an outage defers it and spends
nothing. (So a requeue must restore the retries, as ``retry_now()`` does, or the row fails again
at once.) Once none is left to send, the row ends ``failed``, its dead letters delivered (or
refused: a dead letter gets no retry and no dead letter of its own).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.utils import timezone

from ..conf import BroadcasterSettings
from ..dead_letters import dead_letter_event, dead_letter_for
from ..events import CloudEvent
from .leases import ClaimedEvent
from .models import DestinationEntry, DestinationState, OutboxEvent, Status

#: How a dead letter's entry in ``delivery`` is named: this, then the failed destination.
PREFIX: Final = "dead-letter:"
#: The states of a dead letter still to send.
_TO_SEND: Final = (str(DestinationState.PENDING), str(DestinationState.UNAVAILABLE))
_NOT_REACHED: Final = (str(DestinationState.REJECTED), str(DestinationState.UNAVAILABLE))


@dataclass(frozen=True)
class Letter:
    """One dead letter to send: its entry's name in ``delivery``, its alias and its event."""

    name: str
    alias: str
    event: CloudEvent


def retries_spent(row: ClaimedEvent) -> bool:
    """Return whether ``row`` is past its retries: a claim of it sends its dead letters only."""
    return row.retry_count > row.max_retries


def letters(row: ClaimedEvent) -> list[Letter]:
    """Return the dead letters of ``row`` still to send (``pending``, or deferred by an outage)."""
    found = []
    for destination, entry in row.delivery.items():
        alias, name = entry.get("dead_letter"), PREFIX + destination
        if alias and row.delivery.get(name, {}).get("state") in _TO_SEND:
            event = dead_letter_event(
                row.event,
                destination,
                entry.get("attempts", 0),
                entry.get("error", ""),
                row.max_retries,
            )
            found.append(Letter(name, alias, event))
    return found


def settle(
    row: OutboxEvent,
    claimed: ClaimedEvent,
    refused: Collection[str],
    result: str,
    config: BroadcasterSettings,
) -> str:
    """Return what ``row`` (the unsaved write for ``claimed``) became, sending it on to its dead
    letters when it has just ``failed`` at the destinations ``refused``.

    ``result`` is :func:`~..retry.decide`'s. After a claim that sent dead letters, the row is
    ``deferred`` while one waits out an outage, else ``failed`` and counted ``dead_lettered``
    (``failed`` if one was refused).
    """
    if retries_spent(claimed):
        return _after_letters(row, claimed.retry_count)
    if result == "failed" and _divert(row, claimed, refused, config):
        return "failed"
    return result


def _divert(
    row: OutboxEvent, claimed: ClaimedEvent, refused: Collection[str], config: BroadcasterSettings
) -> bool:
    """Give ``row`` a pending dead letter per refusing destination with a ``DEAD_LETTER``; keep
    it due now. Return whether it got any."""
    targets = {
        d: dead_letter_for(claimed.event, d, config) for d in refused if not d.startswith(PREFIX)
    }
    delivery: dict[str, DestinationEntry] = dict(row.delivery)
    for destination, alias in targets.items():
        if alias is not None:
            delivery[destination] = {**delivery[destination], "dead_letter": alias}
            tried = claimed.delivery.get(PREFIX + destination, {}).get("attempts", 0)
            delivery[PREFIX + destination] = {"state": DestinationState.PENDING, "attempts": tried}
    if delivery == row.delivery:
        return False
    row.delivery, row.status, row.scheduled_at = delivery, Status.PENDING, timezone.now()
    return True


def _after_letters(row: OutboxEvent, retry_count: int) -> str:
    """Settle a row whose claim sent dead letters; its retries stay as they were spent."""
    delivery: Mapping[str, DestinationEntry] = row.delivery
    row.retry_count = retry_count  # a refused dead letter spends nothing: there is no retry
    row.last_error = "; ".join(
        f"{name}: {entry.get('error', '')}"
        for name, entry in delivery.items()
        if entry.get("state") in _NOT_REACHED
    )
    states = [entry.get("state") for name, entry in delivery.items() if name.startswith(PREFIX)]
    if DestinationState.UNAVAILABLE in states:
        row.status = Status.PENDING  # decide() made it wait for the dead-letter destination
        return "deferred"
    row.status = Status.FAILED  # also a row requeued with its retries still spent: no retry left
    sent = states and DestinationState.REJECTED not in states
    return "dead_lettered" if sent else "failed"


@dataclass(frozen=True)
class DeadLetterCount:
    """How many events that failed at ``destination`` went on to ``dead_letter``, by where
    their dead letter stands: still to send (or waiting out an outage), sent, or refused."""

    destination: str
    dead_letter: str
    to_send: int
    sent: int
    refused: int


def dead_letter_counts(destinations: Sequence[str]) -> list[DeadLetterCount]:
    """Return the dead letters of the unfinished and failed rows, per failed destination of
    ``destinations`` and alias, in one query (none for no destination)."""
    if not destinations:
        return []
    columns: dict[str, KeyTextTransform] = {}
    for index, destination in enumerate(destinations):
        columns[f"alias_{index}"] = KeyTextTransform(
            "dead_letter", KeyTransform(destination, "delivery")
        )
        columns[f"state_{index}"] = KeyTextTransform(
            "state", KeyTransform(PREFIX + destination, "delivery")
        )
    groups = (
        OutboxEvent.objects.filter(status__in=[Status.PENDING, Status.FAILED])
        .filter(delivery__has_any_keys=[PREFIX + d for d in destinations])
        .values(**columns)
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for group in groups:
        for index, destination in enumerate(destinations):
            alias = group[f"alias_{index}"]  # none once a requeued row reached it since
            if alias is not None and group[f"state_{index}"] is not None:
                counts[destination, alias][group[f"state_{index}"]] += group["n"]
    return [
        DeadLetterCount(
            destination,
            alias,
            to_send=sum(states[state] for state in _TO_SEND),
            sent=states[str(DestinationState.DELIVERED)],
            refused=states[str(DestinationState.REJECTED)],
        )
        for (destination, alias), states in sorted(counts.items())
    ]
