"""Cost of password authentication (not part of the test suite).

    .venv/bin/python bench/bench_access.py [--logins 20]

Starts ``python -m server serve --auth-file`` on a free loopback port with two users, one
hashed with the default PBKDF2 iteration count and one with 1 000, and reports the seconds
from start to ready, the time of a whole login (connect, SASL, open session, ``SELECT 1``,
close) for each, and ``SELECT 1`` round trips on an open authenticated connection.
Stops the server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.common import bench_server, percentile, select1_latencies  # noqa: E402
from server.auth import DEFAULT_ITERATIONS, set_password  # noqa: E402
from server.thrift import connect  # noqa: E402

PASSWORD = "bench-password"


def login_times(port: int, user: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.monotonic()
        connection = connect("127.0.0.1", port, username=user, password=PASSWORD)
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        connection.close()
        times.append(time.monotonic() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="emoticana-bench-access-"))
    users = work / "users"
    set_password(users, "default_cost", PASSWORD)
    set_password(users, "low_cost", PASSWORD, iterations=1000)
    with bench_server(work / "home", [work], "--auth-file", str(users)) as server:
        port = server.port
        print(f"machine: {os.cpu_count()} cores")
        print(f"server with --auth-file, start to ready: {server.ready_s:.1f} s")
        for user, iterations in (("default_cost", DEFAULT_ITERATIONS), ("low_cost", 1000)):
            times = login_times(port, user, args.logins)
            print(
                f"login + SELECT 1 + close, PBKDF2 {iterations} iterations, {args.logins} logins: "
                f"p50 {1000 * statistics.median(times):.0f} ms, p90 "
                f"{1000 * percentile(times, 90):.0f} ms"
            )
        cursor = connect("127.0.0.1", port, username="low_cost", password=PASSWORD).cursor()
        select1 = select1_latencies(cursor)
        print(
            "SELECT 1 on an open authenticated connection, 200 queries: p50 "
            f"{1000 * statistics.median(select1):.1f} ms, "
            f"p99 {1000 * percentile(select1, 99):.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
