"""The hand-packed AMQP frames are byte for byte what pika writes for the same message."""

from __future__ import annotations

import pytest
from pika import frame, spec

from django_broadcaster.backends.rabbitmq.frames import FRAME_OVERHEAD, Packer
from django_broadcaster.backends.rabbitmq.messages import (
    AmqpMessage,
    binary_message,
    structured_message,
)
from tests.factories import published_event


def pikas(
    message: AmqpMessage, key: str, message_id: str, mandatory: bool, frame_max: int
) -> bytes:
    """Return the frames pika's ``basic_publish`` writes for ``message`` on channel 1."""
    properties = spec.BasicProperties(
        content_type=message.content_type,
        headers=message.headers or None,
        delivery_mode=2,
        message_id=message_id,
    )
    body, step = message.body, frame_max - FRAME_OVERHEAD
    frames = [
        frame.Method(
            1, spec.Basic.Publish(exchange="amq.topic", routing_key=key, mandatory=mandatory)
        ),
        frame.Header(1, len(body), properties),
        *(frame.Body(1, body[i : i + step]) for i in range(0, len(body), step)),
    ]
    return b"".join(f.marshal() for f in frames)


EVENT = published_event(
    event_type="shop.order.created",
    subject="Zoë/42",
    data={"note": "crème brûlée", "pad": "x" * 9000},
    extensions={"partitionkey": "customer-7", "vip": True, "tenant": "ünï"},
)


@pytest.mark.parametrize("build", [binary_message, structured_message])
@pytest.mark.parametrize("mandatory", [True, False])
@pytest.mark.parametrize("frame_max", [131072, 4096])  # 4096: the body spans three frames
def test_a_packed_message_is_what_pika_writes(build, mandatory: bool, frame_max: int) -> None:
    message = build(EVENT)
    packer = Packer(1, "amq.topic", mandatory, frame_max)
    for _ in range(2):  # the second time from the cached method frame and header names
        packed = packer.pack("shop.order.created", message, str(EVENT.id), 2)
        assert packed == pikas(message, "shop.order.created", str(EVENT.id), mandatory, frame_max)


def test_an_empty_body_or_no_content_type_packs_as_pika_does() -> None:
    message = AmqpMessage(b"", None, {})
    packed = Packer(1, "amq.topic", True, 131072).pack("k", message, "id-1", 2)
    assert packed == pikas(message, "k", "id-1", True, 131072)


def test_a_short_string_over_255_bytes_is_refused() -> None:
    message = AmqpMessage(b"{}", "application/json; x=" + "y" * 250, {})
    with pytest.raises(ValueError, match="over AMQP's 255 bytes"):
        Packer(1, "amq.topic", True, 131072).pack("k", message, "id-1", 2)
