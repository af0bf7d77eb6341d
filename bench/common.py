"""Small helpers shared by the benchmark scripts."""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path


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
