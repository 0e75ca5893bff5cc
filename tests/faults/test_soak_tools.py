"""The soak's own tools, checked without services: the checker finds what it must, and the proxy
forwards, delays, cuts and resets as it says."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.proxy import FaultProxy

from .soak.check import Destination, Event, order_breaks

pytestmark = [pytest.mark.faults]

EVENTS = [
    Event("a1", "order.created", "order-1", "published"),
    Event("b1", "order.created", "order-2", "published"),
    Event("a2", "order.paid", "order-1", "published"),
    Event("a3", "order.shipped", "order-1", "published"),
]


def test_the_checker_passes_a_complete_ordered_delivery_with_duplicates_in_bound() -> None:
    received = ["a1", "b1", "a2", "a1", "a2", "a3"]  # a batch sent again
    assert Destination("Redis", received, EVENTS).problems(duplicate_bound=2) == []


@pytest.mark.parametrize(
    ("received", "bound", "found"),
    [
        (["a1", "b1", "a2"], 0, "1 events lost"),
        (["a1", "b1", "a2", "a3", "x9"], 0, "never committed"),
        (["a1", "b1", "a3", "a2"], 0, "1 keys out of order"),
        (["a1", "a1", "b1", "a2", "a3"], 0, "1 duplicates, more than 0"),
    ],
)
def test_the_checker_finds_loss_strangers_disorder_and_duplicates(
    received: list[str], bound: int, found: str
) -> None:
    problems = Destination("Kafka", received, EVENTS).problems(bound)
    assert len(problems) == 1 and found in problems[0], problems


def test_order_is_judged_by_the_first_copy_of_each_event() -> None:
    assert order_breaks(["a1", "a2", "a1", "a3"], EVENTS) == []
    assert order_breaks(["a2", "a1", "a2", "a3"], EVENTS) == ["order-1: " + str(
        ["order.paid", "order.created", "order.shipped"]
    )]  # fmt: skip


@pytest.fixture
def echo_port() -> Iterator[int]:
    """Return the port of a loopback echo server that runs until the test ends."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy resets some connections
            while data := conn.recv(1024):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def round_trip(port: int, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"ping")
        return sock.recv(1024)


def test_the_proxy_forwards_and_delays(echo_port: int) -> None:
    with FaultProxy(echo_port) as proxy:
        assert round_trip(proxy.port) == b"ping"
        proxy.latency_s = 0.2
        started = time.monotonic()
        assert round_trip(proxy.port) == b"ping"
        assert time.monotonic() - started >= 0.4  # once each way


def test_the_proxy_cuts_then_resets_what_it_caught(echo_port: int) -> None:
    with FaultProxy(echo_port) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
        proxy.partition()
        sock.sendall(b"ping")
        with pytest.raises(TimeoutError):
            sock.recv(1024)
        sock.settimeout(2)
        proxy.heal()
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)
        sock.close()
        assert round_trip(proxy.port) == b"ping"


def test_the_proxy_resets_open_connections(echo_port: int) -> None:
    with FaultProxy(echo_port) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        sock.sendall(b"ping")
        assert sock.recv(1024) == b"ping"
        assert proxy.reset() == 1
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)
        sock.close()
