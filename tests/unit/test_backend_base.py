"""The backend base class: send() built on send_batch(), 0.2.0's send()-only backends, errors."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

import pytest

from django_broadcaster.backends import ConsoleBackend, LocMemBackend, create_backend
from django_broadcaster.backends.base import BaseBackend, Rejections, masked, secret_option_values
from django_broadcaster.conf import BackendConfig
from django_broadcaster.events import CloudEvent
from django_broadcaster.exceptions import (
    BackendUnavailable,
    BroadcasterImproperlyConfigured,
    EventRejected,
)
from tests.factories import published_event


class BatchOnly(BaseBackend):
    """Implements only send_batch(): refuses events whose data says so, or is down."""

    def __init__(self, alias: str, *, down: bool = False) -> None:
        super().__init__(alias)
        self.down = down
        self.batches: list[list[str]] = []

    def send_batch(self, events: Sequence[CloudEvent]) -> Rejections:
        self.batches.append([str(event.id) for event in events])
        if self.down:
            raise BackendUnavailable("connection refused", destination=self.alias)
        return {
            str(event.id): EventRejected("too large", destination=self.alias)
            for event in events
            if event.data == {"refuse": True}
        }


class SendOnly(BaseBackend):
    """Written for 0.2.0: implements only send()."""

    def __init__(self, alias: str) -> None:
        super().__init__(alias)
        self.sent: list[str] = []

    def send(self, event: CloudEvent) -> None:
        self.sent.append(str(event.id))
        if event.data == {"refuse": True}:
            raise EventRejected("too large", destination=self.alias)
        if event.data == {"down": True}:
            raise BackendUnavailable("connection refused", destination=self.alias)


class Neither(BaseBackend):
    """Implements neither method."""


def test_send_goes_through_send_batch_with_the_one_event() -> None:
    backend, event = BatchOnly("out"), published_event()
    backend.send(event)
    assert backend.batches == [[str(event.id)]]


def test_send_raises_the_rejection_send_batch_returned() -> None:
    backend = BatchOnly("out")
    with pytest.raises(EventRejected, match="too large") as info:
        backend.send(published_event(data={"refuse": True}))
    assert info.value.destination == "out"


def test_send_lets_an_outage_through() -> None:
    with pytest.raises(BackendUnavailable):
        BatchOnly("out", down=True).send(published_event())


def test_a_send_only_backend_gets_a_send_batch_that_loops_over_send() -> None:
    backend = SendOnly("legacy")
    events = [published_event(), published_event(data={"refuse": True}), published_event()]
    rejected = backend.send_batch(events)
    assert backend.sent == [str(event.id) for event in events]
    assert list(rejected) == [str(events[1].id)]
    assert isinstance(rejected[str(events[1].id)], EventRejected)


def test_a_send_only_backend_stops_the_batch_at_an_outage() -> None:
    backend = SendOnly("legacy")
    events = [published_event(), published_event(data={"down": True}), published_event()]
    with pytest.raises(BackendUnavailable):
        backend.send_batch(events)
    assert backend.sent == [str(event.id) for event in events[:2]]


def test_a_send_only_backend_still_sends_one_event_itself() -> None:
    backend = SendOnly("legacy")
    with pytest.raises(EventRejected):
        backend.send(published_event(data={"refuse": True}))
    assert len(backend.sent) == 1


def test_a_backend_implementing_neither_says_to_implement_send_batch() -> None:
    backend, event = Neither("out"), published_event()
    with pytest.raises(NotImplementedError, match=r"Neither must implement send_batch\(\)"):
        backend.send_batch([event])
    with pytest.raises(NotImplementedError, match=r"Neither must implement send_batch\(\)"):
        backend.send(event)


def test_locmem_keeps_every_event_of_a_batch() -> None:
    backend, events = LocMemBackend("memory"), [published_event(), published_event()]
    assert backend.send_batch(events) == {}
    backend.send(published_event())
    assert backend.events[:2] == events
    assert len(backend.events) == 3


def test_console_writes_one_json_line_per_event() -> None:
    stream = io.StringIO()
    events = [published_event(), published_event()]
    assert ConsoleBackend("console", stream=stream).send_batch(events) == {}
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [str(event.id) for event in events]


# --- Errors built by the base ------------------------------------------------------------------


class Guarded(BatchOnly):
    """A backend with a configured secret and an address, as Redis's has."""

    _secrets = frozenset({"hunter2"})

    def _where(self) -> str:
        return "Guarded at cache:1"


def test_an_unknown_option_names_the_alias_the_class_and_the_option() -> None:
    with pytest.raises(BroadcasterImproperlyConfigured) as info:
        LocMemBackend("memory", colour="red")
    assert str(info.value) == (
        "Backend 'memory' (LocMemBackend): unknown option 'colour'; it takes no options."
    )


def test_a_configuration_error_names_the_alias_and_the_class() -> None:
    with pytest.raises(
        BroadcasterImproperlyConfigured, match=r"^Backend 'out' \(BatchOnly\): x\.$"
    ):
        BatchOnly("out")._improperly_configured("x")


def test_a_rejection_names_the_backend_and_the_event_and_chains_its_cause() -> None:
    event, cause = published_event(), ValueError("password hunter2 refused")
    error = Guarded("out")._rejected(event, cause)
    assert (
        str(error)
        == f"Backend 'out': Guarded at cache:1 refused event {event.id}: password *** refused"
    )
    assert (error.destination, error.__cause__) == ("out", cause)


def test_an_outage_names_the_backend_and_masks_secrets() -> None:
    error = BatchOnly("out")._unavailable("no answer")
    assert str(error) == "Backend 'out': BatchOnly is unavailable: no answer"
    assert error.destination == "out"
    assert "hunter2" not in str(Guarded("out")._unavailable(OSError("auth hunter2 failed")))


def test_masked_skips_empty_strings_and_other_values() -> None:
    assert masked("a=s3cret b=1", ["s3cret", "", 1, None]) == "a=*** b=1"


def test_a_misspelt_required_option_is_named_missing_and_unknown() -> None:
    config = BackendConfig(
        "kafka", "django_broadcaster.backends.KafkaBackend", {"bootstrap_servers": "b", "topc": "x"}
    )
    with pytest.raises(BroadcasterImproperlyConfigured) as info:
        create_backend(config)
    assert str(info.value) == (
        "Backend 'kafka' (KafkaBackend): missing required option 'topic'; unknown option 'topc' "
        "(did you mean 'topic'?); the valid options are bootstrap_servers, content_mode, "
        "producer_options, send_timeout, topic."
    )


def test_several_unknown_options_are_listed_each_with_its_suggestion() -> None:
    with pytest.raises(BroadcasterImproperlyConfigured) as info:
        ConsoleBackend("out", steam=None, colour="red")
    assert str(info.value) == (
        "Backend 'out' (ConsoleBackend): unknown options 'colour', 'steam' (did you mean "
        "'stream'?); the valid options are stream."
    )


def test_secret_options_are_found_by_name_in_every_transport() -> None:
    # One rule for Kafka's producer options and Redis's client options alike.
    options = {"sasl_plain_password": "pw", "SSL_Secret": "s", "ssl_keyfile": "/k", "retries": 3}
    assert secret_option_values({**options, "password": ""}) == {"pw", "s"}
