"""A RabbitMQ node that belongs to one drill, to stop and start as the drill needs.

It is a private node, as ``scripts/services`` runs one: Debian's ``rabbitmq-server``, listening
on a free loopback port, with its own node data (which survives a restart, so durable queues
and persistent messages do), Erlang distribution port and ``epmd`` port.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import TracebackType

from tests.ci import missing

from .services import INSTALL_HINT, ServiceProcess, free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


class RabbitMQNode(ServiceProcess):
    """A private RabbitMQ node; :meth:`stop` stops it gracefully (SIGTERM), data kept."""

    name = "rabbitmq"

    def __init__(self) -> None:
        if not os.access(SERVER, os.X_OK):
            missing(f"rabbitmq-server is not installed ({INSTALL_HINT})")
        super().__init__()
        self.epmd_port, self.dist_port = free_port(), free_port()
        config = f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n"
        (self.directory / "rabbitmq.conf").write_text(config)
        (self.directory / "enabled_plugins").write_text("[].\n")

    @property
    def url(self) -> str:
        """Return the node's ``amqp://`` URL (user ``guest``)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def command(self) -> list[str]:
        directory = self.directory
        return [
            "env",
            "RABBITMQ_NODENAME=rabbit@localhost",
            f"RABBITMQ_MNESIA_BASE={directory}/mnesia",
            f"RABBITMQ_LOG_BASE={directory}/log",
            f"RABBITMQ_CONFIG_FILE={directory}/rabbitmq",
            f"RABBITMQ_ENABLED_PLUGINS_FILE={directory}/enabled_plugins",
            f"RABBITMQ_DIST_PORT={self.dist_port}",
            f"ERL_EPMD_PORT={self.epmd_port}",
            "ERL_EPMD_ADDRESS=127.0.0.1",
            f"HOME={directory}",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
            str(SERVER),
        ]

    def ready(self) -> bool:
        import pika
        from pika.exceptions import AMQPError

        parameters = pika.URLParameters(self.url)
        parameters.socket_timeout = 1
        try:
            pika.BlockingConnection(parameters).close()
        except AMQPError:
            return False
        return True

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the whole node (its start script and the Erlang VM) and wait until it exits."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)  # the script's session: the VM is in it too
        super().stop(sig)

    def freeze(self) -> None:
        """Freeze the whole node (SIGSTOP): its port takes connections, nothing answers."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def thaw(self) -> None:
        """Let a frozen node run on (SIGCONT)."""
        if self.paused and self.process is not None:
            os.killpg(self.process.pid, signal.SIGCONT)
        self.paused = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.thaw()  # a frozen node would never see the signal that stops it
        super().__exit__(exc_type, exc, traceback)
        # epmd runs as a daemon of its own, outside the node's process group.
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], capture_output=True)
