"""Small helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: How long a benchmark waits for ``Emoticana ready:`` before it gives up (a loaded 2-core machine needs minutes).
SERVER_START_TIMEOUT_S = 600


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values, q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def select1_latencies(cursor, count: int = 200) -> list[float]:
    """Seconds per ``SELECT 1`` round trip (execute and fetch), ``count`` times."""
    import time

    latencies = []
    for _ in range(count):
        started = time.monotonic()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        latencies.append(time.monotonic() - started)
    return latencies


def linked_clips(audio: str, count: int, prefix: str) -> tuple[Path, Path]:
    """A fresh work directory with ``clips/`` holding symlinks to the first ``count`` clips under ``audio``.

    Exits with one line when there are fewer clips than asked for.
    """
    files = sorted(Path(audio).rglob("*.flac")) + sorted(Path(audio).rglob("*.wav"))
    if len(files) < count:
        sys.exit(f"need {count} clips under {audio}, found {len(files)}")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    clip_dir = work / "clips"
    clip_dir.mkdir()
    for f in files[:count]:
        (clip_dir / f.name).symlink_to(f.resolve())
    return work, clip_dir


class BenchServer:
    """``python -m server serve`` on a free loopback port, for one benchmark; a context manager.

    ``args`` are the serve flags after ``--port`` (``--home``, ``--audio-roots``, ...).  Its output
    is read by a thread all the time, so the server never blocks on a full pipe; the last lines
    are kept for the one-line failure.  ``port`` and ``ready_s`` (start to ready) are set once
    ready.  Leaving the block stops it with SIGTERM, then SIGKILL after ``stop_timeout_s``.
    """

    def __init__(self, *args: str, env: dict | None = None, start_timeout_s: float = SERVER_START_TIMEOUT_S,
                 stop_timeout_s: float = 120):
        self.port = free_port()
        self.command = [sys.executable, "-m", "server", "serve", "--port", str(self.port), *args]
        self.env = env
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen | None = None
        self.ready_s: float | None = None
        self.lines: list[str] = []

    def __enter__(self) -> "BenchServer":
        ready = threading.Event()
        started = time.monotonic()
        self.process = subprocess.Popen(self.command, cwd=PROJECT_ROOT, env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)

        def pump():
            for line in self.process.stdout:
                self.lines.append(line)
                del self.lines[:-200]
                if line.startswith("Emoticana ready:"):
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = started + self.start_timeout_s
        while not ready.wait(1.0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "".join(self.lines[-20:])
                raise SystemExit(f"the server did not start within {self.start_timeout_s:.0f} s "
                                 f"(exit {self.process.returncode}):\n{tail}")
        self.ready_s = time.monotonic() - started
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``stop_timeout_s``; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        return self.process.returncode

    def connect(self, username: str = "bench"):
        """A PyHive connection to the server."""
        from pyhive import hive

        return hive.connect(host="127.0.0.1", port=self.port, username=username)


def environment_without_pythonpath() -> dict:
    """This process's environment minus PYTHONPATH (executors must import the shipped zip, not the tree)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
