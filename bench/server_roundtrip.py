"""Server start-up and round-trip times through PyHive (not part of the test suite).

    .venv/bin/python bench/server_roundtrip.py [--audio ../shared/ravdess] [--clips 100]

Starts ``python -m server serve`` as ``make serve`` does (venv already built), reports the
seconds until it prints its JDBC URL, ``SELECT 1`` round trips, and ``SELECT mfcc(content)``
over a table of N clips (each query fetched completely).  Loopback only; stops the server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.common import bench_server, linked_clips, percentile, select1_latencies  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audio", default=str(PROJECT_ROOT.parent / "shared" / "ravdess"))
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work, clip_dir = linked_clips(args.audio, args.clips, "emoticana-bench-")
    with bench_server(work / "home", [clip_dir]) as server:
        cursor = server.connect().cursor()
        select1 = select1_latencies(cursor)
        cursor.execute(f"CREATE TABLE bench_clips USING binaryFile OPTIONS (path '{clip_dir}')")
        mfcc_runs = []
        for _ in range(args.repeats):
            t = time.monotonic()
            cursor.execute("SELECT path, mfcc(content) FROM bench_clips")
            rows = cursor.fetchall()
            mfcc_runs.append(time.monotonic() - t)
            assert len(rows) == args.clips and all(r[1] is not None for r in rows)
        print(f"machine: {os.cpu_count()} cores; clips from {args.audio}")
        print(f"server start to ready (warm venv): {server.ready_s:.1f} s")
        print(
            f"SELECT 1 over PyHive, 200 queries: p50 {1000 * statistics.median(select1):.1f} ms, "
            f"p99 {1000 * percentile(select1, 99):.1f} ms"
        )
        print(
            f"SELECT path, mfcc(content) over {args.clips} clips: "
            + ", ".join(f"{s:.2f} s" for s in mfcc_runs)
            + f" (first run includes Python worker start; best {args.clips / min(mfcc_runs):.0f} "
            "clips/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
