"""What the outbox's failure-groups page lists and does (see :mod:`.failures`)."""

from __future__ import annotations

from typing import ClassVar

from django.contrib import messages
from django.http import HttpRequest
from django.utils import timezone

from ..fingerprints import FailureGroup
from ..outbox.failures import failure_groups, group_events
from ..outbox.models import OutboxEventQuerySet
from .failures import GroupActions


class OutboxGroups(GroupActions):
    """Failed events by destination, error class and message; replay requeues a group's events
    (each goes again only to the destinations that have not accepted it), discard deletes them.
    """

    title: ClassVar[str] = "Failure groups"
    where: ClassVar[str] = "destination"
    help: ClassVar[str] = (
        "Failed events grouped by the destination that refused them (or could not be reached), "
        "the error's class and its message with numbers, ids, quoted values and times taken out. "
        "An event that failed at two destinations is in two groups. Replay sends a group's "
        "events again to every destination that has not accepted them, with their retries "
        "restored; destinations that accepted them do not get them twice. Times are UTC."
    )
    discards: ClassVar[bool] = True

    def groups(self) -> list[FailureGroup]:
        return failure_groups()

    def replay(self, request: HttpRequest, fingerprint: str) -> tuple[str, int]:
        requeued = group_events(fingerprint).retry_now()
        message = (
            f"Replaying group {fingerprint}: {requeued} failed events will be sent again to the "
            "destinations that have not accepted them."
        )
        return message, messages.SUCCESS if requeued else messages.WARNING

    def discardable(self, fingerprint: str) -> OutboxEventQuerySet:
        return group_events(fingerprint).not_held(timezone.now())
