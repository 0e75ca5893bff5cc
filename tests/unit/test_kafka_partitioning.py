"""The partitioner of the kafka-python backend, against a stand-in for kafka-python's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from kafka.partitioner import DefaultPartitioner

from django_broadcaster.backends.kafka.partitioning import BatchPartitioner


@dataclass
class Cluster:
    """What a partitioner reads of kafka-python's ``ClusterMetadata``."""

    partitions: set[int]
    unavailable: set[int] = field(default_factory=set)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions - self.unavailable

    def topics(self) -> set[str]:
        return {"orders"}


def keyless(partitioner: BatchPartitioner, cluster: Cluster) -> int:
    return partitioner.partition("orders", None, None, b"v", b"v", cluster)


def test_keyless_messages_stay_on_one_partition_until_it_needs_a_new_batch() -> None:
    partitioner, cluster = BatchPartitioner(), Cluster({0, 1, 2, 3})

    first = [keyless(partitioner, cluster) for _ in range(5)]
    partitioner.on_new_batch("orders", cluster, first[0])
    second = [keyless(partitioner, cluster) for _ in range(5)]

    assert first == [0] * 5
    assert second == [1] * 5


def test_new_batches_take_the_available_partitions_in_turn() -> None:
    partitioner, cluster = BatchPartitioner(), Cluster({0, 1, 2, 3}, unavailable={2})

    chosen = []
    for _ in range(4):
        chosen.append(keyless(partitioner, cluster))
        partitioner.on_new_batch("orders", cluster, chosen[-1])

    assert chosen == [0, 1, 3, 0]


def test_a_stale_new_batch_signal_does_not_move_the_messages() -> None:
    partitioner, cluster = BatchPartitioner(), Cluster({0, 1, 2})
    keyless(partitioner, cluster)

    partitioner.on_new_batch("orders", cluster, 2)  # a keyed message's partition, not ours

    assert keyless(partitioner, cluster) == 0


def test_keyless_messages_use_every_partition_when_none_is_known_available() -> None:
    partitioner, cluster = BatchPartitioner(), Cluster({0, 1}, unavailable={0, 1})

    assert keyless(partitioner, cluster) == 0


@pytest.mark.parametrize("key", [b"order-1", b"order-2", b"customer-7", b""])
def test_keyed_messages_go_where_kafka_pythons_default_partitioner_sends_them(key: bytes) -> None:
    cluster = Cluster(set(range(12)))

    chosen = BatchPartitioner().partition("orders", key, key, b"v", b"v", cluster)

    assert chosen == DefaultPartitioner().partition("orders", key, key, b"v", b"v", cluster)
