"""The soak's world: its own services, the proxies in front of the brokers, and its processes.

:class:`Rig` starts, in order: a PostgreSQL cluster with three databases (``shop`` for the web
server and the workers, one inbox database per consumer, as two other projects would have), a
Redis with an append-only file, a Tansu broker that tells clients to connect through the Kafka
proxy, gunicorn serving the example project, the outbox workers and the consumers, each as a
:class:`Supervised` process that a fault can kill and the rig restarts, as a supervisor would.
Everything is stopped when the ``with`` block ends.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

from harness.polling import poll
from harness.process import Process, django_command
from harness.proxy import FaultProxy
from tests.workers import READY_LINE, REPO_ROOT

from ..observe import StreamReader, TopicReader
from ..services import PostgresCluster, RedisServer, TansuBroker, free_port

WORKERS = 2
WEB_PROCESSES = 3
STREAM = TOPIC = "soak"
CONSUMER_DATABASES = {"consume_redis": "inbox_redis", "consume_kafka": "inbox_kafka"}


class Supervised:
    """One process of the soak, started again after each fault that ends it."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.args, self.env, self.log_dir = name, args, env, log_dir
        self.process: Process | None = None
        self.starts = 0

    def start(self, ready_line: str) -> None:
        """Start the process and wait for its ready line."""
        self.process = Process(
            self.args,
            env=self.env,
            cwd=REPO_ROOT,
            ready_line=ready_line,
            name=self.name,
            log=self.log_dir / f"{self.name}.log",
        ).start()
        self.starts += 1
        self.process.wait_ready()

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the running process."""
        assert self.process is not None
        self.process.send_signal(signum)

    def end(self, signum: int) -> int:
        """Send ``signum`` and wait for the process to exit; return its exit status."""
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait()

    def close(self) -> None:
        """Kill the process if it runs (SIGCONT first, in case a fault left it stopped)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.close()


class Rig:
    """Start the soak's services and processes; stop all of them on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._stack = ExitStack()
        self.postgres = PostgresCluster()
        self.redis = RedisServer()
        self.tansu = TansuBroker()
        self.redis_proxy = FaultProxy(self.redis.port)
        self.kafka_proxy = FaultProxy(self.tansu.port)
        self.tansu.advertised_port = self.kafka_proxy.port
        self.web_port = free_port()
        self.web: Supervised | None = None
        self.workers: list[Supervised] = []
        self.consumers: dict[str, Supervised] = {}
        self.kafka_readers: list[TopicReader] = []
        self.stream_reader = StreamReader(self.redis.url, STREAM)

    @property
    def kafka_servers(self) -> str:
        """Return the bootstrap address every Kafka client uses: the proxy's."""
        return f"127.0.0.1:{self.kafka_proxy.port}"

    def env(self, database: str = "shop") -> dict[str, str]:
        """Return the environment of a soak process on ``database``."""
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.faults.soak.settings",
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'example'}",
            "SOAK_DB_PORT": str(self.postgres.port),
            "SOAK_DB_NAME": database,
            "SOAK_REDIS_URL": f"redis://127.0.0.1:{self.redis_proxy.port}/0",
            "SOAK_STREAM": STREAM,
            "SOAK_KAFKA": self.kafka_servers,
            "SOAK_TOPIC": TOPIC,
            "SHOP_LOG_LEVEL": "INFO",  # the example logs warnings only; the ready lines are INFO
        }

    def __enter__(self) -> Rig:
        try:
            self._start()
        except BaseException:
            self._stack.close()  # what started before the failure
            raise
        return self

    def _start(self) -> None:
        stack = self._stack
        stack.enter_context(self.postgres)
        stack.enter_context(self.redis)
        stack.enter_context(self.redis_proxy)
        stack.enter_context(self.kafka_proxy)
        stack.enter_context(self.tansu)
        for database in ("shop", *CONSUMER_DATABASES.values()):
            self.postgres.create_database(database)
        self._migrate()
        stack.callback(self._close_processes)
        self._start_web()
        for number in range(1, WORKERS + 1):
            worker = self._supervised(f"worker-{number}", "outbox_worker", "-v", "2")
            worker.start(READY_LINE)
            self.workers.append(worker)
        self._start_consumers()
        stack.enter_context(self.stream_reader)
        self.new_kafka_reader()

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def new_kafka_reader(self) -> TopicReader:
        """Start reading the topic from its start (again, after the broker lost it); return it."""
        reader = TopicReader(self.kafka_servers, TOPIC)
        self._stack.enter_context(reader)
        self.kafka_readers.append(reader)
        return reader

    def kafka_ids(self) -> list[str]:
        """Return what every Kafka reader read, reader after reader (duplicates kept)."""
        return [event_id for reader in self.kafka_readers for event_id in reader.ids]

    def restart(self, supervised: Supervised) -> None:
        """Start ``supervised`` again after it exited."""
        ready = READY_LINE if supervised in self.workers else "Consumer started"
        supervised.start(ready)

    def _supervised(
        self, name: str, command: str, *args: str, database: str = "shop"
    ) -> Supervised:
        return Supervised(name, django_command(command, *args), self.env(database), self.log_dir)

    def _migrate(self) -> None:
        runs = [
            Process(
                django_command("migrate", "--run-syncdb", "-v", "0"),
                env=self.env(database),
                cwd=REPO_ROOT,
                name=f"migrate {database}",
            ).start()
            for database in ("shop", *CONSUMER_DATABASES.values())
        ]
        for run in runs:
            with run:
                assert run.wait() == 0, f"{run.name} failed:\n{run.tail()}"

    def _start_web(self) -> None:
        args = [
            sys.executable, "-m", "gunicorn", "shop_project.wsgi:application",
            "--bind", f"127.0.0.1:{self.web_port}",
            "--workers", str(WEB_PROCESSES),
            "--timeout", "60",
            "--graceful-timeout", "5",
        ]  # fmt: skip
        self.web = Supervised("gunicorn", args, self.env(), self.log_dir)
        self.web.start("Listening at")
        process = self.web.process
        assert process is not None
        poll(
            lambda: len(process.lines("Booting worker")) >= WEB_PROCESSES,
            120,
            f"{WEB_PROCESSES} gunicorn workers to boot",
        )

    def _start_consumers(self) -> None:
        redis = self._supervised(
            "consume_redis", "consume_redis", "--stream", STREAM, "--group", "soak",
            "--consumer", "soak-redis", "--url", self.redis.url, "--retry-delay", "0.2",
            "-v", "2", database=CONSUMER_DATABASES["consume_redis"],
        )  # fmt: skip
        kafka = self._supervised(
            "consume_kafka", "consume_kafka", "--topic", TOPIC, "--group", "soak",
            "--bootstrap-servers", self.kafka_servers, "--retry-delay", "0.2",
            "--consumer-option", "session_timeout_ms=6000", "-v", "2",
            database=CONSUMER_DATABASES["consume_kafka"],
        )  # fmt: skip
        for consumer in (redis, kafka):
            consumer.start("Consumer started")
            self.consumers[consumer.name] = consumer

    def _close_processes(self) -> None:
        for supervised in [*self.consumers.values(), *self.workers]:
            supervised.close()
        if self.web is not None:
            self.web.end(signal.SIGTERM)
