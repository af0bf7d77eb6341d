"""``emoticana cluster`` refuses a bad set-up with one line and exit code 2, before starting any
JVM."""

import socket
import subprocess
import sys

import pytest

from server.settings import PROJECT_ROOT


def run_cluster(*args):
    return subprocess.run(
        [sys.executable, "-m", "server", "cluster", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def busy_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--workers", "0"], "at least 1 worker"),
        (["--cores", "0"], "at least 1 worker and 1 core"),
    ],
)
def test_bad_sizes_fail_with_one_line(args, message):
    result = run_cluster(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_master_port_in_use_fails_with_one_line(busy_port):
    result = run_cluster("--port", str(busy_port))
    assert result.returncode == 2
    assert (
        result.stderr.count("\n") == 1
        and f"port {busy_port} on 127.0.0.1 is already in use" in result.stderr
    ), result.stderr
