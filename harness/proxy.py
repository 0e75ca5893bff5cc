"""A TCP proxy that a test controls, to put network faults between a client and a server.

``FaultProxy(upstream_port)`` listens on a free loopback port and forwards each connection to
``127.0.0.1:upstream_port``, one thread per direction. While it runs, a test can:

- add latency (:attr:`FaultProxy.latency_s`): every chunk waits that long before it is sent on;
- cut the network (:meth:`FaultProxy.partition`): nothing is forwarded and new connections get no
  answer; when :meth:`FaultProxy.heal` ends the cut, the connections it caught are reset, as a
  real network's would be after their peers timed out (data held back is never forwarded late,
  so a client never reads half an answer);
- reset every open connection at once (:meth:`FaultProxy.reset`): both sides get a TCP RST.

Use it as a context manager, or call :meth:`start` and :meth:`close`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

#: Bytes read at a time from either side.
CHUNK = 65536


def _abort(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of a FIN (``SO_LINGER`` with a zero timeout).

    ``SHUT_RD`` first wakes the thread blocked reading it (Linux sends nothing for it): a socket
    closed under a blocked ``recv()`` is only released, and the RST sent, when that call returns.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:upstream_port``, with faults on demand."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.latency_s = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: set[tuple[socket.socket, socket.socket | None]] = set()
        self._lock = threading.Lock()
        self._healed = threading.Event()
        self._healed.set()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name=f"proxy-{self.port}")
        self._acceptor.daemon = True

    def start(self) -> FaultProxy:
        """Start accepting connections; return ``self``."""
        self._acceptor.start()
        return self

    def partition(self) -> None:
        """Cut the network: forward nothing until :meth:`heal`."""
        self._healed.clear()

    def heal(self) -> None:
        """End a :meth:`partition`: reset the connections it caught, forward new ones again."""
        if not self._healed.is_set():
            self.reset()
            self._healed.set()

    def reset(self) -> int:
        """Reset every open connection (a TCP RST to both sides); return how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for client, server in pairs:
            _abort(client)
            if server is not None:
                _abort(server)
        return len(pairs)

    def close(self) -> None:
        """Stop accepting and reset every connection. Safe to call twice."""
        self._closed = True
        self._healed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        pair: tuple[socket.socket, socket.socket | None] = (client, None)
        with self._lock:
            self._pairs.add(pair)
        self._healed.wait()
        try:
            server = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            server.settimeout(None)
        except OSError:
            self._forget(pair, client)
            return
        with self._lock:
            if pair not in self._pairs:  # reset while connecting
                _abort(server)
                return
            self._pairs.discard(pair)
            pair = (client, server)
            self._pairs.add(pair)
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(pair, source, target), daemon=True).start()

    def _pump(
        self, pair: tuple[socket.socket, socket.socket | None], source: socket.socket,
        target: socket.socket,
    ) -> None:  # fmt: skip
        try:
            while data := source.recv(CHUNK):
                if self.latency_s:
                    time.sleep(self.latency_s)
                self._healed.wait()
                with self._lock:
                    if pair not in self._pairs:  # reset meanwhile: drop what was held back
                        return
                target.sendall(data)
        except OSError:
            pass
        with self._lock:
            reset = pair not in self._pairs  # then reset() closed both sockets already
        if not reset:
            self._forget(pair, source, target)

    def _forget(
        self, pair: tuple[socket.socket, socket.socket | None], *socks: socket.socket
    ) -> None:
        with self._lock:
            self._pairs.discard(pair)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
