"""Read what really reached the brokers: event ids from a Redis stream and from a Kafka topic.

The drills never trust the outbox's own bookkeeping for "delivered": they read the destinations.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

import redis
from kafka import KafkaConsumer, TopicPartition

from harness.polling import poll


def stream_ids(url: str, stream: str) -> list[str]:
    """Return the ``event_id`` of every entry of ``stream``, in stream order (duplicates kept)."""
    client = redis.Redis.from_url(url)
    ids: list[str] = []
    start = "-"
    try:
        while True:
            entries = client.xrange(stream, min=start, count=10_000)
            ids.extend(fields[b"event_id"].decode() for _, fields in entries)
            if len(entries) < 10_000:
                return ids
            last = entries[-1][0].decode()
            start = f"({last}"
    finally:
        client.close()


@dataclass(frozen=True)
class Deliveries:
    """How often each expected event reached one destination."""

    destination: str
    counts: Counter[str]
    expected: frozenset[str]

    @classmethod
    def of(cls, destination: str, ids: Iterable[str], expected: Iterable[str]) -> Deliveries:
        """Count ``ids`` (as read from the destination) against the ``expected`` event ids."""
        return cls(destination, Counter(ids), frozenset(expected))

    @property
    def missing(self) -> set[str]:
        """Return the expected ids the destination never got."""
        return set(self.expected - self.counts.keys())

    @property
    def unexpected(self) -> set[str]:
        """Return ids the destination got that were never published."""
        return set(self.counts.keys() - self.expected)

    @property
    def duplicates(self) -> int:
        """Return the number of extra copies (deliveries beyond the first of each event)."""
        return sum(count - 1 for count in self.counts.values() if count > 1)

    def summary(self) -> str:
        """Return a one-line account for the drill report."""
        return (
            f"{self.destination}: {len(self.expected) - len(self.missing)}/{len(self.expected)} "
            f"events, {self.duplicates} duplicates, {len(self.missing)} missing"
        )


class DestinationReader:
    """Read event ids from one destination in a background thread, noting when each arrived.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Subclasses implement
    :meth:`_read`, which calls :meth:`_collect` with what it reads until ``_stop`` is set.
    """

    def __init__(self, name: str) -> None:
        self._ids: list[str] = []
        self._arrived: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader-{name}", daemon=True)
        self.last_record_at = time.monotonic()
        self.error: BaseException | None = None

    def start(self) -> DestinationReader:
        """Start reading; return ``self``."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading (safe to call twice, or before :meth:`start`)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(30)

    @property
    def ids(self) -> list[str]:
        """Return the ids read so far, in the order read (duplicates kept)."""
        with self._lock:
            return list(self._ids)

    def count(self) -> int:
        """Return the number of messages read so far."""
        with self._lock:
            return len(self._ids)

    def arrived(self, event_id: str) -> float | None:
        """Return the monotonic time the first copy of ``event_id`` was read, if it was."""
        with self._lock:
            return self._arrived.get(event_id)

    def wait_idle(self, quiet_s: float, timeout: float = 60.0) -> None:
        """Wait until no message has arrived for ``quiet_s`` seconds (the destination is drained).

        Sound only while nobody writes to the destination.
        """
        poll(
            lambda: time.monotonic() - self.last_record_at >= quiet_s,
            timeout,
            f"{self._thread.name} to be quiet for {quiet_s:g} s",
            every=0.1,
        )

    def wait_for(self, ids: Iterable[str], timeout: float = 60.0) -> set[str]:
        """Wait until every id in ``ids`` was read; return those still missing at ``timeout``."""
        wanted = set(ids)

        def missing() -> set[str]:
            with self._lock:
                return wanted.difference(self._arrived)

        with contextlib.suppress(TimeoutError):  # the caller asserts on what is missing
            poll(
                lambda: not missing() or self.error is not None,
                timeout,
                f"{len(wanted)} events from {self._thread.name}",
                every=0.2,
            )
        return missing()

    def _run(self) -> None:
        try:
            self._read()
        except BaseException as exc:  # reported by the drill's assertions
            self.error = exc

    def _read(self) -> None:
        raise NotImplementedError

    def _collect(self, ids: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            self._ids.extend(ids)
            for event_id in ids:
                self._arrived.setdefault(event_id, now)
        if ids:
            self.last_record_at = now

    def __enter__(self) -> DestinationReader:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class TopicReader(DestinationReader):
    """Consume a Kafka topic from its start, collecting event ids.

    Partitions are assigned by hand (no consumer group, so no join delay) as soon as the topic
    exists. The id is the ``ce_id`` header of the binary content mode.
    """

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        super().__init__(f"kafka-{topic}")
        self.bootstrap_servers, self.topic = bootstrap_servers, topic

    def _read(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=2000,
        )
        try:
            self._assign(consumer)
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    self._collect([dict(r.headers)["ce_id"].decode() for r in records])
        finally:
            consumer.close()

    def _assign(self, consumer: KafkaConsumer) -> None:
        while not self._stop.is_set():
            consumer.topics()  # refreshes the metadata
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
                consumer.assign(assigned)
                consumer.seek_to_beginning(*assigned)
                return
            time.sleep(0.2)


class StreamReader(DestinationReader):
    """Follow a Redis stream from its start with ``XREAD``, collecting event ids.

    Reconnects when the server goes away, and carries on from the last entry it read.
    """

    def __init__(self, url: str, stream: str) -> None:
        super().__init__(f"redis-{stream}")
        self.url, self.stream = url, stream

    def _read(self) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=1)
        last = "0-0"
        try:
            while not self._stop.is_set():
                try:
                    answer = client.xread({self.stream: last}, count=5000, block=200)
                except redis.RedisError:
                    time.sleep(0.2)
                    continue
                for _, entries in answer:
                    self._collect([fields[b"event_id"].decode() for _, fields in entries])
                    last = entries[-1][0].decode()
        finally:
            client.close()
