"""Many clients at once: concurrent JDBC sessions with mixed work, errors and isolation counted.

    .venv/bin/python bench/load_clients.py [--clients 8] [--duration-s 300] \\
        [--max-queries 5000] [--port 10000]

Each client is its own PyHive connection (its own HiveServer2 session) in a thread and goes
round after round, in a seeded shuffled order, through: feature queries (``audio_info``/``mfcc``
over a generated audio table), classification (``emotion``/``emotion_scores``), DDL on its own
tables (CREATE/INSERT/SELECT/DROP inside its own database), ``SET`` of a session setting and
``USE``. After every step it checks that its session still sees only its own ``SET`` value, current
database and temporary view, and that every result is right.  Starts no new step after
``--duration-s`` seconds or ``--max-queries`` statements in all, whichever comes first (a step
under way finishes: a few statements); loopback only.

Without ``--port`` it starts its own server on a free port with a temporary state directory,
and stops it at the end.  Prints p50/p99 latency per statement kind; exits 1 if any statement
failed or any isolation check did not hold.  ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.common import bench_server, percentile  # noqa: E402
from udfs.features import DEFAULT_FEATURES  # noqa: E402

HOST = "127.0.0.1"
AUDIO_TABLE = "default.load_audio"
MFCC_SIZE = DEFAULT_FEATURES.n_rows * DEFAULT_FEATURES.n_frames  # what mfcc(content) returns
EMOTIONS = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}
#: The steps of a client's mix; each client goes through them in rounds, in its own shuffled order.
STEPS = ("features", "classify", "ddl", "set", "use")


def write_clips(
    directory: Path, count: int, *, seconds: float = 1.5, sample_rate: int = 16000
) -> list[Path]:
    """``count`` short harmonic clips with a syllable-like envelope, as 16-bit WAV."""
    import soundfile as sf

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    paths = []
    for index in range(count):
        f0 = 110 + 15 * index
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
        envelope = 0.5 * (1 - np.cos(2 * np.pi * 3.0 * t)) * np.hanning(t.size)
        samples = 0.4 * tone * envelope / np.max(np.abs(tone)) + 0.002 * rng.standard_normal(t.size)
        path = directory / f"clip_{index:02d}.wav"
        sf.write(str(path), samples.astype(np.float32), sample_rate, subtype="PCM_16")
        paths.append(path)
    return paths


@dataclass
class Tally:
    """Shared by the client threads: latencies per kind, failures, and the global statement
    budget."""

    max_queries: int
    deadline: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def may_start_step(self) -> bool:
        """False once the time or the statement count is used up (a step under way still
        finishes)."""
        with self.lock:
            return self.issued < self.max_queries and time.monotonic() < self.deadline

    def record(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.issued += 1
            self.latencies[kind].append(seconds)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)


class LoadClient:
    """One JDBC session doing a seeded random mix of work in its own database."""

    def __init__(self, number: int, port: int, tally: Tally, clip_count: int):
        self.number = number
        self.name = f"c{number}"
        self.database = f"load_{self.name}"
        self.port = port
        self.tally = tally
        self.clip_count = clip_count
        self.rng = np.random.default_rng(1000 + number)
        self.tag = f"{self.name}-0"
        self.tables = 0
        self.cursor = None

    def run(self) -> None:
        from pyhive import hive

        connection = hive.connect(host=HOST, port=self.port, username=f"load_{self.name}")
        self.cursor = connection.cursor()
        try:
            self.setup()
            while True:
                # Client n starts with step n (mod 5), so every kind of step runs from the start.
                order = list(STEPS[self.number % len(STEPS) :] + STEPS[: self.number % len(STEPS)])
                order[1:] = self.rng.permutation(order[1:])
                for step in order:
                    if not self.tally.may_start_step():
                        return
                    getattr(self, f"step_{step}")()
                    self.check_isolation()
        except Exception as exc:  # a failure outside a counted statement (connection lost)
            self.tally.error(f"{self.name}: {type(exc).__name__}: {exc}"[:300])
        finally:
            self.cleanup()
            connection.close()

    def sql(self, kind: str, statement: str):
        started = time.monotonic()
        try:
            self.cursor.execute(statement)
            rows = self.cursor.fetchall() if self.cursor.description else []
        except Exception as exc:
            self.tally.error(f"{self.name} {kind}: {statement[:80]!r}: {_message(exc)}")
            return None
        self.tally.record(kind, time.monotonic() - started)
        return rows

    def expect(self, what: str, got, wanted) -> None:
        if got != wanted:
            self.tally.violation(f"{self.name}: {what}: got {got!r}, expected {wanted!r}")

    def setup(self) -> None:
        self.sql("setup", f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self.sql("setup", f"USE {self.database}")
        self.sql("setup", f"SET spark.sql.emoticana_load.tag={self.tag}")
        self.sql("setup", f"CREATE OR REPLACE TEMPORARY VIEW mine AS SELECT '{self.name}' AS owner")

    def cleanup(self) -> None:
        self.sql("setup", "USE default")
        self.sql("setup", f"DROP DATABASE IF EXISTS {self.database} CASCADE")

    def step_features(self) -> None:
        rows = self.sql(
            "features",
            f"SELECT count(*), sum(size(mfcc(content))), count(audio_info(content).error), "
            f"round(min(audio_info(content).duration_s), 3) FROM {AUDIO_TABLE}",
        )
        if rows is not None:
            self.expect("features", rows[0], (self.clip_count, self.clip_count * MFCC_SIZE, 0, 1.5))

    def step_classify(self) -> None:
        rows = self.sql(
            "classify",
            f"SELECT emotion(content), emotion_scores(mfcc(content)).angry FROM {AUDIO_TABLE}",
        )
        if rows is not None:
            labels = {label for label, _ in rows}
            scores_ok = all(score is not None and 0.0 <= score <= 1.0 for _, score in rows)
            self.expect(
                "classify",
                (len(rows), labels <= EMOTIONS, scores_ok),
                (self.clip_count, True, True),
            )

    def step_ddl(self) -> None:
        self.tables += 1
        table = f"t_{self.name}_{self.tables}"
        if self.sql("create", f"CREATE TABLE {table} (id INT, owner STRING) USING parquet") is None:
            return
        count = int(self.rng.integers(1, 20))
        values = ", ".join(f"({i}, '{self.name}')" for i in range(count))
        self.sql("insert", f"INSERT INTO {table} VALUES {values}")
        rows = self.sql(
            "select", f"SELECT count(*), min(owner), max(owner) FROM {self.database}.{table}"
        )
        if rows is not None:
            self.expect(f"rows of {table}", rows[0], (count, self.name, self.name))
        rows = self.sql("show", "SHOW TABLES")
        if rows is not None:
            # SHOW TABLES lists the current database's tables and this session's temporary views.
            names = {name for _, name, _ in rows}
            self.expect("tables visible", names, {table, "mine"})
        self.sql("drop", f"DROP TABLE {table}")

    def step_set(self) -> None:
        self.tag = f"{self.name}-{int(self.rng.integers(1, 10**6))}"
        self.sql("set", f"SET spark.sql.emoticana_load.tag={self.tag}")

    def step_use(self) -> None:
        self.sql("use", "USE default")
        rows = self.sql("use", "SELECT current_database()")
        if rows is not None:
            self.expect("database after USE default", rows[0][0], "default")
        self.sql("use", f"USE {self.database}")

    def check_isolation(self) -> None:
        rows = self.sql("check", "SET spark.sql.emoticana_load.tag")
        if rows is not None:
            self.expect("SET value", rows[0][1] if rows else None, self.tag)
        rows = self.sql("check", "SELECT current_database(), owner FROM mine")
        if rows is not None:
            self.expect("session state", tuple(rows[0]), (self.database, self.name))


def _message(exc: Exception) -> str:
    from server.thrift import server_message

    return server_message(exc)[:300]


def run_load(
    port: int, *, clients: int, duration_s: float, max_queries: int, clip_dir: Path
) -> dict:
    """Run the clients against the server on ``port``; returns the figures."""
    from pyhive import hive

    clips = sorted(clip_dir.glob("*.wav"))
    admin = hive.connect(host=HOST, port=port, username="load_admin").cursor()
    admin.execute(
        f"CREATE TABLE IF NOT EXISTS {AUDIO_TABLE} USING binaryFile OPTIONS (path '{clip_dir}', "
        "pathGlobFilter '*.wav')"
    )
    for number in range(clients):  # left over by an interrupted earlier run
        admin.execute(f"DROP DATABASE IF EXISTS load_c{number} CASCADE")
    tally = Tally(max_queries=max_queries, deadline=time.monotonic() + duration_s)
    started = time.monotonic()
    threads = [
        threading.Thread(target=LoadClient(n, port, tally, len(clips)).run, name=f"load-c{n}")
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # Bounded: the budget stops new statements at the deadline; the last ones in flight finish.
        thread.join(timeout=max(1.0, tally.deadline - time.monotonic()) + 300)
    hung = [thread.name for thread in threads if thread.is_alive()]
    admin.execute(f"DROP TABLE IF EXISTS {AUDIO_TABLE}")
    admin.close()
    return {
        "clients": clients,
        "clips": len(clips),
        "seconds": round(time.monotonic() - started, 1),
        "statements": tally.issued + len(tally.errors),
        "errors": tally.errors + [f"client thread {name} did not stop" for name in hung],
        "violations": tally.violations,
        "kinds": {
            kind: {
                "count": len(values),
                "p50_ms": round(1000 * percentile(values, 50), 1),
                "p99_ms": round(1000 * percentile(values, 99), 1),
                "max_ms": round(1000 * max(values), 1),
            }
            for kind, values in sorted(tally.latencies.items())
        },
    }


def print_figures(figures: dict) -> None:
    print(
        f"{figures['clients']} clients, {figures['seconds']} s, "
        f"{figures['statements']} statements, {figures['clips']} clips in the audio table"
    )
    print()
    print("| kind | count | p50 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    for kind, row in figures["kinds"].items():
        print(f"| {kind} | {row['count']} | {row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} |")
    print()
    print(f"errors: {len(figures['errors'])}, isolation violations: {len(figures['violations'])}")
    for line in (figures["errors"] + figures["violations"])[:20]:
        print(f"  {line}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--duration-s", type=float, default=300.0, help="stop issuing statements after this long"
    )
    parser.add_argument(
        "--max-queries", type=int, default=5000, help="stop after this many statements in all"
    )
    parser.add_argument("--clips", type=int, default=8, help="clips in the generated audio table")
    parser.add_argument("--port", type=int, help="use the server already running on 127.0.0.1:PORT")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--audio-dir",
        type=Path,
        help="with --port: a folder inside the server's EMOTICANA_AUDIO_ROOTS for the generated "
        "clips (the SQL sandbox refuses tables elsewhere); default: a temporary folder",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="emoticana-load-"))
    try:
        clip_dir = work / "audio"
        if args.audio_dir is not None:
            clip_dir = Path(tempfile.mkdtemp(prefix="emoticana-load-", dir=args.audio_dir))
        write_clips(clip_dir, args.clips)
        with contextlib.ExitStack() as stack:
            port = args.port
            if port is None:
                port = stack.enter_context(bench_server(work / "home", [clip_dir])).port
            figures = run_load(
                port,
                clients=args.clients,
                duration_s=args.duration_s,
                max_queries=args.max_queries,
                clip_dir=clip_dir,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.audio_dir is not None:
            shutil.rmtree(clip_dir, ignore_errors=True)
    print_figures(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 1 if figures["errors"] or figures["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
