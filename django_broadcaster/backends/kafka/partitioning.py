"""The partitioner :class:`~django_broadcaster.backends.KafkaBackend` gives kafka-python.

Imported only when kafka-python is installed.
"""

from __future__ import annotations

from typing import Any

from kafka.partitioner import DefaultPartitioner


class BatchPartitioner(DefaultPartitioner):  # type: ignore[misc]  # kafka-python has no types
    """Hash keyed messages as kafka-python does; keep keyless ones together, batch by batch.

    A message with a key goes where ``DefaultPartitioner`` sends it (the Java client's murmur2
    of the key), so every producer of the topic agrees on a key's partition. Keyless messages
    all go to one partition until the producer needs a new batch there (a full one, or one sent
    by a flush); they then move to the next available partition. This is Kafka's sticky
    partitioning (KIP-480). The worker flushes after each of its batches, so each batch of
    keyless events is one record batch, on one partition, and the batches take the partitions
    in turn.

    kafka-python's own partitioners sort the topic's partitions for every message; this one looks
    up a dict (docs/performance.md). It keeps no lock: a producer that several threads share may
    send a few keyless messages to the partition just left, which is harmless.
    """

    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        """Return the partition of a message, as the producer asks before appending it."""
        if serialized_key is None:
            current = self._current.get(topic)
            return self._move(topic, cluster, None) if current is None else current
        partition: int = super().partition(
            topic, key, serialized_key, value, serialized_value, cluster
        )
        return partition

    def on_new_batch(self, topic: str, cluster: Any, prev_partition: int) -> None:
        """Move keyless messages off ``prev_partition``, which needs a new batch (producer hook)."""
        if self._current.get(topic) == prev_partition:
            self._move(topic, cluster, prev_partition)

    def _move(self, topic: str, cluster: Any, after: int | None) -> int:
        """Make the next available partition after ``after`` the topic's current one; return it."""
        partitions: list[int] = sorted(
            cluster.available_partitions_for_topic(topic)
            or cluster.partitions_for_topic(topic)
            or ()
        )
        if not partitions:
            raise ValueError(f"Topic {topic} has no known partitions.")
        following = [number for number in partitions if after is not None and number > after]
        self._current[topic] = chosen = (following or partitions)[0]
        return chosen
