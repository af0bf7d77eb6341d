"""The server as a child process, started the way a user starts it (``python -m server serve``).

One implementation for the two places that need a real server they own: the test
fixtures and the benchmark scripts.  The child's output is read by a thread all
the time, so the server never blocks on a full pipe, and it is kept for
assertions and for the one-line failure when the server does not become ready.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from server.cluster import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The line ``serve`` prints once clients can connect.
READY_PREFIX = "Emoticana ready:"


class ServerNotReady(RuntimeError):
    """The server exited, or did not print its ready line in time."""


class ServerProcess:
    """``python -m server serve`` on free loopback ports, as a child process; also a context
    manager.

    Parameters
    ----------
    home : Path, keyword-only
        The server's ``--home`` (catalog, warehouse, models).
    audio_roots : list of Path, keyword-only
        The folders SQL may read audio from (``--audio-roots``).
    port : int or None, keyword-only
        The HiveServer2 port; a free one when None.
    console_port : int or None, keyword-only
        The web console's port; a free one when None, 0 for no console.
    extra_args : sequence of str, keyword-only
        More ``serve`` flags.
    start_timeout_s : float, keyword-only
        How long :meth:`start` waits for the ready line (a loaded 2-core machine needs minutes).
    env : dict, keyword-only
        Overrides of this process's environment.  PYTHONPATH is always dropped:
        the server's executors must import the shipped code zip, not the tree.
    """

    def __init__(
        self,
        *,
        home: Path,
        audio_roots,
        port: int | None = None,
        console_port: int | None = None,
        extra_args=(),
        env: dict | None = None,
        start_timeout_s: float = 300,
    ):
        self.home = Path(home)
        self.audio_roots = [Path(root) for root in audio_roots]
        # Ports chosen here are chosen anew when another process takes one first.
        self._own_ports = port is None, console_port is None
        self.port = port or free_port()
        self.console_port = free_port() if console_port is None else console_port
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.lines: list[str] = []  # the current attempt's output
        self._earlier: list[str] = []  # output of attempts that lost a port: it may hold warnings
        self.process: subprocess.Popen | None = None
        self.ready_s: float | None = None  # start to ready, seconds
        self._ready = threading.Event()

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--port",
            str(self.port),
            "--home",
            str(self.home),
            "--audio-roots",
            ":".join(str(root) for root in self.audio_roots),
            "--console-port",
            str(self.console_port),
            *self.extra_args,
        ]

    def start(self, *, timeout_s: float | None = None, attempts: int = 3) -> ServerProcess:
        """Start the child and wait for its ready line; :class:`ServerNotReady` with its last lines
        otherwise.

        A free port found here can be taken by another process before the server binds it (Spark
        takes many ports while it starts); then the start is tried again on new free ports.
        """
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout_s)
            except ServerNotReady:
                lost_port = any(self._own_ports) and "already in use" in "".join(self.lines)
                if attempt == attempts or not lost_port:
                    raise
                if self._own_ports[0]:
                    self.port = free_port()
                if self._own_ports[1]:
                    self.console_port = free_port()
                # A failed attempt may already have done start-up work and said so (a repaired
                # warehouse, for one); what it printed stays part of this server's output.
                self._earlier += self.lines
                self.lines, self._ready = [], threading.Event()
        raise AssertionError("unreachable")

    def _start_once(self, timeout_s: float | None) -> ServerProcess:
        timeout_s = self.start_timeout_s if timeout_s is None else timeout_s
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(self.env)
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.command(),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(
            target=self._pump, args=(self.process, self.lines, self._ready), daemon=True
        ).start()
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            if self._ready.wait(0.5):
                self.ready_s = time.monotonic() - started
                return self
            if self.process.poll() is not None:
                break
        self.stop()
        tail = "".join(self.lines[-40:])
        raise ServerNotReady(
            f"the server did not become ready within {timeout_s:.0f} s (exit "
            f"{self.process.returncode}):\n{tail}"
        )

    @staticmethod
    def _pump(process: subprocess.Popen, lines: list[str], ready: threading.Event) -> None:
        for line in process.stdout:
            lines.append(line)
            if line.startswith(READY_PREFIX):
                ready.set()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 90) -> int | None:
        """Send ``sig``, then SIGKILL if the child has not exited within ``timeout_s``; its exit
        code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything the server printed, across start attempts."""
        return "".join(self._earlier + self.lines)

    def connect(self, username: str = "tester", **kwargs):
        """A PyHive DB-API connection to the server."""
        from pyhive import hive

        return hive.connect(host="127.0.0.1", port=self.port, username=username, **kwargs)

    def __enter__(self) -> ServerProcess:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
