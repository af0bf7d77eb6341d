"""Classification throughput on a standalone cluster of 1 and of 2 workers (not part of the tests).

    .venv/bin/python bench/bench_cluster.py [--audio ../shared/ravdess] [--clips 200] \\
        [--workers 1,2]

For each worker count: starts a Spark standalone master and that many 1-core workers
on 127.0.0.1 (``server.cluster``), the server against it, and times
``SELECT path, emotion(content)`` over a binaryFile table of the clips (first run and
the best of the warm runs, each fetched completely over PyHive).  Then it stops the
server and the cluster.  Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.common import bench_server, linked_clips  # noqa: E402
from server.cluster import StandaloneCluster  # noqa: E402
from server.process import ServerProcess  # noqa: E402


def cluster_server(master: str, home: Path, audio_root: Path) -> ServerProcess:
    """A server on ``master`` (executors of 1 GB), not yet started: use it as a context manager."""
    return bench_server(
        home, [audio_root], "--master", master, "--conf", "spark.executor.memory=1g"
    )


def measure(workers: int, clip_dir: Path, clips: int, repeats: int, work: Path) -> dict:
    with StandaloneCluster(
        workers=workers, cores=1, memory="2g", state_dir=work / f"cluster-{workers}"
    ) as cluster:
        with cluster_server(cluster.master_url, work / f"home-{workers}", clip_dir) as server:
            cursor = server.connect().cursor()
            cursor.execute(f"CREATE TABLE bench_clips USING binaryFile OPTIONS (path '{clip_dir}')")
            runs, results = [], None
            for _ in range(repeats):
                started = time.monotonic()
                cursor.execute("SELECT path, emotion(content) FROM bench_clips ORDER BY path")
                rows = cursor.fetchall()
                runs.append(time.monotonic() - started)
                if len(rows) != clips or any(r[1] is None for r in rows):
                    raise SystemExit(
                        f"{workers} workers: expected {clips} classified rows, got {len(rows)}"
                    )
                results = results or rows
            return {
                "workers": workers,
                "ready_s": server.ready_s,
                "first": clips / runs[0],
                "best": clips / min(runs[1:] or runs),
                "results": results,
            }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audio", default=str(PROJECT_ROOT.parent / "shared" / "ravdess"))
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated worker counts (1 core each)"
    )
    args = parser.parse_args()
    work, clip_dir = linked_clips(args.audio, args.clips, "emoticana-bench-cluster-")
    rows = [
        measure(int(n), clip_dir, args.clips, args.repeats, work) for n in args.workers.split(",")
    ]
    same = all(r["results"] == rows[0]["results"] for r in rows)
    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}; {args.clips} clips; standalone workers of 1 core, "
        f"executors 1g; same predictions on every cluster: {same}\n"
    )
    print("| workers | server start to ready | first query | warm (best of the rest) |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['workers']} | {r['ready_s']:.1f} s | {r['first']:.1f} files/s | "
            f"{r['best']:.1f} files/s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
