"""A Spark standalone cluster on one machine: a Master and N Workers from pyspark's own jars.

``emoticana cluster --workers 2 --cores 1`` starts them on the bind address
(127.0.0.1), prints the master URL once every worker has registered, and stops
them all on Ctrl-C or SIGTERM.  Tests and benchmarks use :class:`StandaloneCluster`
directly.  Every daemon runs in a process group of its own, and the executors a
Worker launches (and their Python workers) stay in that group, so stopping or
killing a worker's group takes its executor with it.  The daemons start with no
``PYTHONPATH`` and in a directory of their own, so the executors see the
project's code only through what the application ships (``server.code_zip``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from server.preflight import check_port_free, java_executable
from server.settings import DEFAULT_HOST
from udfs.errors import ConfigError, EmoticanaError

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: Heap of the Master and Worker daemons themselves (executors get spark.executor.memory).
DAEMON_MEMORY = "256m"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class ClusterError(EmoticanaError):
    """The standalone cluster did not come up (the message carries the daemon's last log lines)."""


def spark_home() -> Path:
    """pyspark's installation: its ``jars/`` are a complete Spark distribution's classpath."""
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    if not (home / "jars").is_dir():
        raise ConfigError(f"pyspark at {home} has no jars/ directory; reinstall pyspark")
    return home


def scala_version(home: Path) -> str:
    """The Scala version of pyspark's jars (``spark-core_2.13-4.3.0.jar`` -> ``2.13``)."""
    for jar in sorted((home / "jars").glob("spark-core_*.jar")):
        return jar.name.split("_", 1)[1].split("-", 1)[0]
    raise ConfigError(f"pyspark at {home} has no spark-core jar in jars/; reinstall pyspark")


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen
    log: Path
    webui_port: int

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass  # the whole group is already gone

    def group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def last_error(self) -> str:
        """The daemon's last ERROR or exception line, for a one-line report."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        errors = [line.strip() for line in lines if " ERROR " in line or "Exception" in line]
        return (errors or lines or ["empty log"])[-1][:300]


class StandaloneCluster:
    """Master + ``workers`` Workers, each with ``cores`` cores and ``memory`` for executors."""

    def __init__(
        self,
        *,
        workers: int = 2,
        cores: int = 1,
        memory: str = "2g",
        host: str = DEFAULT_HOST,
        state_dir: Path | None = None,
        master_port: int | None = None,
        webui_port: int | None = None,
    ):
        if workers < 1 or cores < 1:
            raise ConfigError(
                f"a cluster needs at least 1 worker and 1 core each, got {workers} workers, "
                f"{cores} cores"
            )
        self.workers_wanted = workers
        self.cores = cores
        self.memory = memory
        self.host = host
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="emoticana-cluster-")).absolute()
        self._ports_asked = [p for p in (master_port, webui_port) if p]
        self.master_port = master_port or free_port(host)
        self.master_webui_port = webui_port or free_port(host)
        self.master: Daemon | None = None
        self.workers: list[Daemon] = []

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.master_port}"

    @property
    def master_webui(self) -> str:
        return f"http://{self.host}:{self.master_webui_port}"

    def _environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "PYSPARK_", "SPARK_"))
        }
        home = spark_home()
        # Without it, a Worker builds the executor command only inside a Spark source tree.
        env.update(
            SPARK_HOME=str(home),
            SPARK_SCALA_VERSION=scala_version(home),
            SPARK_LOCAL_IP=self.host,
            SPARK_LOCAL_HOSTNAME=self.host,
            SPARK_LOG_DIR=str(self.state_dir / "logs"),
            SPARK_WORKER_DIR=str(self.state_dir / "work"),
        )
        return env

    def _launch(self, name: str, main_class: str, args: list[str], webui_port: int) -> Daemon:
        home = spark_home()
        log = self.state_dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        # No REST submission server: it would take the fixed port 6066. No port retries: a daemon
        # on another port than the one asked for would be unreachable. Daemons need little JIT.
        command = [
            java_executable(),
            f"-Xmx{DAEMON_MEMORY}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dspark.master.rest.enabled=false",
            "-Dspark.port.maxRetries=0",
            "-cp",
            f"{home / 'jars'}/*",
            main_class,
            *args,
        ]
        with open(log, "ab") as output:
            process = subprocess.Popen(
                command,
                cwd=self.state_dir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Daemon(name, process, log, webui_port)

    def start(self, *, timeout_s: float = START_TIMEOUT_S) -> StandaloneCluster:
        """Start the Master, then the Workers; return once every worker is ALIVE at the master."""
        if self._ports_asked:
            for port in self._ports_asked:
                check_port_free(self.host, port)
        try:
            self.master = self._launch(
                "master",
                MASTER_CLASS,
                [
                    "--host",
                    self.host,
                    "--port",
                    str(self.master_port),
                    "--webui-port",
                    str(self.master_webui_port),
                ],
                self.master_webui_port,
            )
            deadline = time.monotonic() + timeout_s
            self._wait(
                lambda status: status is not None,
                self.master,
                deadline,
                "the master did not answer",
            )
            for index in range(1, self.workers_wanted + 1):
                self.workers.append(self._start_worker(index))
            self._wait(
                lambda status: (
                    status is not None and self.alive_workers(status) >= self.workers_wanted
                ),
                self.master,
                deadline,
                f"{self.workers_wanted} workers did not register",
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _start_worker(self, index: int) -> Daemon:
        work_dir = self.state_dir / "work" / f"worker-{index}"
        work_dir.mkdir(parents=True, exist_ok=True)
        webui = free_port(self.host)
        return self._launch(
            f"worker-{index}",
            WORKER_CLASS,
            [
                "--host",
                self.host,
                "--port",
                str(free_port(self.host)),
                "--webui-port",
                str(webui),
                "--cores",
                str(self.cores),
                "--memory",
                self.memory,
                "--work-dir",
                str(work_dir),
                self.master_url,
            ],
            webui,
        )

    def _wait(self, ready, daemon: Daemon, deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            if ready(self.status()):
                return
            for candidate in [self.master, *self.workers]:
                if candidate is not None and not candidate.alive():
                    raise ClusterError(
                        f"{candidate.name} exited with code {candidate.process.returncode}: "
                        f"{candidate.last_error()} (log: {candidate.log})"
                    )
            time.sleep(0.5)
        raise ClusterError(f"{what} within {START_TIMEOUT_S:.0f}s (log: {daemon.log})")

    def status(self) -> dict | None:
        """The master's JSON status page, or None while it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.master_webui}/json/", timeout=5) as response:
                return json.loads(response.read().decode("utf-8"))
        except (OSError, ValueError, urllib.error.URLError):
            return None

    @staticmethod
    def alive_workers(status: dict) -> int:
        return sum(1 for worker in status.get("workers", []) if worker.get("state") == "ALIVE")

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker's whole process group: the Worker JVM, its executor and their Python
        workers."""
        self.workers[index].signal_group(signal.SIGKILL)
        self.workers[index].process.wait(STOP_TIMEOUT_S)

    def processes_left(self) -> list[str]:
        """Names of the daemons whose process group still has a live process."""
        return [d.name for d in [self.master, *self.workers] if d is not None and d.group_alive()]

    def stop(self) -> None:
        """Stop workers (and their executors), then the master; SIGKILL what does not stop in
        time."""
        daemons = [d for d in [*self.workers, self.master] if d is not None]
        for daemon in daemons:
            daemon.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for daemon in daemons:
            while daemon.group_alive() and time.monotonic() < deadline:
                daemon.process.poll()  # reap the leader so that the group can empty
                time.sleep(0.2)
            daemon.signal_group(signal.SIGKILL)
            try:
                daemon.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def run_cluster(
    *,
    workers: int,
    cores: int,
    memory: str,
    host: str,
    port: int | None,
    webui_port: int | None,
    state_dir: str | None,
) -> int:
    """``emoticana cluster``: run until Ctrl-C or SIGTERM, then stop every daemon."""
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cluster = StandaloneCluster(
        workers=workers,
        cores=cores,
        memory=memory,
        host=host,
        master_port=port,
        webui_port=webui_port,
        state_dir=Path(state_dir) if state_dir else None,
    )
    try:
        cluster.start()
        print(
            f"Emoticana cluster ready: {cluster.master_url} ({workers} workers x {cores} cores, "
            f"web UI {cluster.master_webui}, logs {cluster.state_dir / 'logs'})",
            flush=True,
        )
        while not stop.is_set():
            lost = [d.name for d in [cluster.master, *cluster.workers] if not d.alive()]
            if lost:
                print(
                    f"emoticana: error: {', '.join(lost)} exited; stopping the cluster", flush=True
                )
                return 1
            stop.wait(1.0)
        print("Emoticana cluster stopping", flush=True)
    finally:
        cluster.stop()
    return 0
