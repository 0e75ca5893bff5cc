"""Command-line values that make no sense are refused with a message, never a traceback."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

CONSUME_KAFKA = ["consume_kafka", "--topic", "t", "--group", "g", "--bootstrap-servers", "h:1"]
CONSUME_REDIS = ["consume_redis", "--stream", "s", "--group", "g", "--url", "redis://h:1/0"]


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
@pytest.mark.parametrize(
    "command",
    [
        ["outbox_status", "--max-lag"],
        ["outbox_worker", "--burst", "--interval"],
        [*CONSUME_KAFKA, "--retry-delay"],
        [*CONSUME_REDIS, "--claim-idle"],
    ],
    ids=["max-lag", "interval", "retry-delay", "claim-idle"],
)
def test_a_duration_must_be_a_finite_number_of_seconds(command: list[str], value: str) -> None:
    with pytest.raises(CommandError, match="a number of seconds, 0 or more"):
        call_command(*command, value)


def test_a_malformed_consumer_option_is_not_echoed() -> None:
    # A ':' typed for '=' would otherwise print the password in the error.
    with pytest.raises(CommandError) as raised:
        call_command(*CONSUME_KAFKA, "--consumer-option", "sasl_plain_password:S3cret")
    assert "S3cret" not in str(raised.value)
    assert "KEY=VALUE" in str(raised.value)


@pytest.mark.parametrize(
    ("command", "url"),
    [
        (["consume_redis", "--stream", "s", "--group", "g"], "redis://:S3cr#et99@h:1/0"),
        (["consume_rabbitmq", "--queue", "q"], "amqp://u:S3cr/et99@h:1/"),
    ],
    ids=["redis", "rabbitmq"],
)
def test_a_url_whose_password_the_client_would_cut_is_refused(command: list[str], url: str) -> None:
    # The client would send a part of the password, maybe to another host; nothing may connect.
    with pytest.raises(CommandError, match="percent-encode") as raised:
        call_command(*command, "--url", url)
    assert "S3cr" not in str(raised.value)
