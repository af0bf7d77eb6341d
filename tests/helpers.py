"""Helpers the test modules share: the CLI run as a user runs it (serve, train, beeline).

Plain functions only; the shared fixtures are in ``tests/conftest.py``. Test modules import from
here, never from one another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark

from server.process import PROJECT_ROOT

BEELINE = Path(pyspark.__file__).parent / "bin" / "beeline"


def serve(tmp_path, *args, env_overrides=None, timeout=120):
    """``python -m server serve`` to its end: for start-ups that fail before Spark starts."""
    env = dict(os.environ)
    env.update(env_overrides or {})
    command = [sys.executable, "-m", "server", "serve", "--home", str(tmp_path / "home"), *args]
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_failure(result, expected):
    assert result.returncode == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("emoticana: error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def beeline(server, *args, timeout=180):
    command = [
        str(BEELINE),
        "-u",
        f"jdbc:hive2://127.0.0.1:{server.port}/default",
        "-n",
        "tester",
        *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def train_command(server, tmp_path, *args) -> list[str]:
    """``python -m server train`` against ``server``; its model goes to ``tmp_path / "models"``."""
    return [
        sys.executable,
        "-m",
        "server",
        "train",
        "--port",
        str(server.port),
        "--home",
        str(server.home),
        "--models-dir",
        str(tmp_path / "models"),
        *args,
    ]


def train(server, tmp_path, *args, timeout=900):
    """:func:`train_command`, run to its end."""
    command = train_command(server, tmp_path, *args)
    return subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )


def log_lines_since(server, start: int, *, quiet_s: float = 2.0, timeout_s: float = 30.0):
    """The server's log lines from index ``start`` on, once it has logged nothing for ``quiet_s``
    (the executor and the scheduler log a failed task around the client's answer)."""
    deadline = time.monotonic() + timeout_s
    count = len(server.lines)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        if len(server.lines) == count:
            break
        count = len(server.lines)
    return list(server.lines[start:])


def assert_logged_once(lines: list[str], value: str) -> None:
    """A user error's trace in the server log: one line naming ``value``, no stack."""
    naming = [line for line in lines if value in line]
    assert len(naming) == 1, "".join(lines)[-3000:]
    assert "UserError: " in naming[0], naming[0]
    assert not any(line.startswith("\tat ") or "Traceback" in line for line in lines), "".join(
        lines
    )[-3000:]


def spark_jobs(ui_port: int, status: str | None = None) -> list[dict]:
    """The jobs (``status``: running, succeeded, failed; None for all) of the server whose Spark UI
    is on ``ui_port`` (its REST API)."""
    base = f"http://127.0.0.1:{ui_port}/api/v1/applications"
    with urllib.request.urlopen(base, timeout=60) as response:
        application = json.load(response)[0]["id"]
    query = f"?status={status}" if status else ""
    with urllib.request.urlopen(f"{base}/{application}/jobs{query}", timeout=60) as response:
        return json.load(response)


def running_jobs(ui_port: int) -> list[dict]:
    """The running jobs of the server whose Spark UI is on ``ui_port``."""
    return spark_jobs(ui_port, "running")
