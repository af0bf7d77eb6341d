"""Small helpers shared by the benchmark scripts."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from server.process import ServerProcess

#: How long a benchmark waits for ``Emoticana ready:`` before it gives up (a loaded 2-core machine
#: needs minutes).
SERVER_START_TIMEOUT_S = 600


def percentile(values, q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def select1_latencies(cursor, count: int = 200) -> list[float]:
    """Seconds per ``SELECT 1`` round trip (execute and fetch), ``count`` times."""
    latencies = []
    for _ in range(count):
        started = time.monotonic()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        latencies.append(time.monotonic() - started)
    return latencies


def linked_clips(audio: str, count: int, prefix: str) -> tuple[Path, Path]:
    """A fresh work directory with ``clips/`` holding symlinks to the first ``count`` clips under
    ``audio``.

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


def bench_server(home: Path, audio_roots, *extra_args: str) -> ServerProcess:
    """A server for one benchmark, not yet started (use it as a context manager): no console, a long
    start timeout."""
    return ServerProcess(
        home=home,
        audio_roots=audio_roots,
        console_port=0,
        extra_args=extra_args,
        start_timeout_s=SERVER_START_TIMEOUT_S,
    )
