"""Session-scoped fixtures: generated audio, and the real server as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.audiogen import voiced_signal, write_bad_inputs, write_clip, write_variants

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT_S = 300


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


@pytest.fixture(scope="session")
def audio_root(tmp_path_factory) -> Path:
    """The directory the test server may read by path, filled with generated clips."""
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(7)
    write_variants(root / "variants", rng)
    write_bad_inputs(root / "bad", rng)
    # RAVDESS-named clips (synthetic content) for ravdess_meta and table tests.
    for index, name in enumerate(["03-01-05-02-01-02-12", "03-01-01-01-01-01-01", "03-01-08-01-02-01-07"]):
        samples = voiced_signal(rng, sample_rate=48000, seconds=1.2 + 0.2 * index, f0=110 + 40 * index)
        write_clip(root / "ravdess" / f"{name}.wav", samples, 48000, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def outside_dir(tmp_path_factory) -> Path:
    """A readable clip outside the audio root (must never be readable by path through SQL)."""
    directory = tmp_path_factory.mktemp("outside")
    samples = voiced_signal(np.random.default_rng(3), sample_rate=16000, seconds=1.0)
    write_clip(directory / "secret.wav", samples, 16000, subtype="PCM_16")
    return directory


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """``python -m server serve`` in a subprocess, as a user runs it."""

    def __init__(self, *, home: Path, audio_roots: list[Path], port: int | None = None, extra_args=(), env=None):
        self.home = home
        self.env = dict(env or {})
        self.port = port or free_port()
        self.console_port = free_port()
        self.audio_roots = audio_roots
        self.extra_args = list(extra_args)
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None
        self._ready = threading.Event()

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "server", "serve",
            "--port", str(self.port),
            "--home", str(self.home),
            "--audio-roots", ":".join(str(r) for r in self.audio_roots),
            "--console-port", str(self.console_port),
            *self.extra_args,
        ]

    def start(self, *, timeout_s: float = SERVER_START_TIMEOUT_S) -> "ServerProcess":
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.update(self.env)
        self.process = subprocess.Popen(
            self.command(), cwd=PROJECT_ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._ready.wait(0.5):
                return self
            if self.process.poll() is not None:
                break
        output = "".join(self.lines[-40:])
        self.stop()
        raise RuntimeError(f"server did not become ready (exit {self.process.returncode}):\n{output}")

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Emoticana ready:"):
                self._ready.set()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 90) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)

    def output(self) -> str:
        return "".join(self.lines)

    def connect(self, **kwargs):
        from pyhive import hive

        return hive.connect(host="127.0.0.1", port=self.port, username="tester", **kwargs)


@pytest.fixture(scope="session")
def server(tmp_path_factory, audio_root) -> ServerProcess:
    running = ServerProcess(home=tmp_path_factory.mktemp("home"), audio_roots=[audio_root]).start()
    yield running
    running.stop()


@pytest.fixture
def cursor(server):
    connection = server.connect()
    yield connection.cursor()
    connection.close()
