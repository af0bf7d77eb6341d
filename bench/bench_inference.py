"""Classification throughput and latency benchmark (not part of the test suite).

    # or: make bench
    .venv/bin/python bench/bench_inference.py [--audio ../shared/ravdess] [--limit N]
    # a quick comparison
    .venv/bin/python bench/bench_inference.py --limit 300 --parts ab --runs 4
    # the shipped model's cost per clip against another model's, (a) alternating
    .venv/bin/python bench/bench_inference.py --parts a --limit 1200 --against OTHER_MODEL_DIR

Prints one table:
  (a) the raw pipeline without Spark, same cores: decode + MFCC + batched model, files/s;
      with --against, each model's in turn --pairs times and the cost ratio per clip
  (b) the server over JDBC: SELECT path, emotion(content) FROM <table>, warm, files/s
  (c) seed-style baseline: a row-at-a-time Python UDF calling model.predict per row, files/s
  (d) the first classification query right after the server says ready, seconds
  (e) SELECT 1 round trips over PyHive, p50 and p99 over 200 queries
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.common import bench_server, percentile, select1_latencies  # noqa: E402
from udfs.model_store import DEFAULT_MODEL  # noqa: E402


# (a) -------------------------------------------------------------------------------------------
def _raw_worker(job):
    files, model_dir = job
    import numpy as np

    from udfs import model_cache
    from udfs.audio import decode_audio
    from udfs.features import mfcc_features
    from udfs.inference import predict_probabilities
    from udfs.model_format import read_model_dir

    info = read_model_dir(Path(model_dir))
    model = model_cache.get_model(info)
    labels = []
    for start in range(0, len(files), 64):
        chunk = files[start : start + 64]
        features = [
            mfcc_features(*decode_audio(Path(f).read_bytes()), config=info.features).ravel()
            for f in chunk
        ]
        probabilities = predict_probabilities(model, np.stack(features), info.features.shape)
        labels.extend(np.argmax(probabilities, axis=1).tolist())
    return len(labels)


@contextlib.contextmanager
def executor_environment():
    """Run with the server's Python-worker environment (``spark.executorEnv.*`` in
    conf/spark-defaults.conf).

    (a) and (c) start their processes inside this, so all three measures use the same settings
    (one BLAS/OpenMP thread per process).  Without them two processes oversubscribe two cores
    and (a) would measure the contention rather than the pipeline.
    """
    from server.preflight import read_spark_defaults

    prefix = "spark.executorEnv."
    defaults = read_spark_defaults(PROJECT_ROOT / "conf" / "spark-defaults.conf")
    wanted = {
        key[len(prefix) :]: value for key, value in defaults.items() if key.startswith(prefix)
    }
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def raw_pipeline(files: list[Path], model_dir: Path, cores: int) -> float:
    shares = [([str(f) for f in files[i::cores]], str(model_dir)) for i in range(cores)]
    with executor_environment(), multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.map(
            _raw_worker, [(share[0][:8], share[1]) for share in shares]
        )  # warm: imports, JIT, model load
        started = time.monotonic()
        done = sum(pool.map(_raw_worker, shares))
        return done / (time.monotonic() - started)


def cost_ratios(
    files: list[Path], model_dir: Path, against: Path, cores: int, pairs: int
) -> list[tuple[float, float]]:
    """(a) for ``model_dir`` and ``against`` in turn, ``pairs`` times: a machine's speed drifts
    by several percent over minutes, so a ratio is only read from runs made side by side, and
    which of the two runs first alternates, since the order alone moves a pair's ratio."""
    runs = []
    for pair in range(pairs):
        if pair % 2 == 0:
            mine = raw_pipeline(files, model_dir, cores)
            theirs = raw_pipeline(files, against, cores)
        else:
            theirs = raw_pipeline(files, against, cores)
            mine = raw_pipeline(files, model_dir, cores)
        runs.append((mine, theirs))
        print(f"(a) pair: {runs[-1][0]:.1f} against {runs[-1][1]:.1f} files/s", file=sys.stderr)
    return runs


# (c) -------------------------------------------------------------------------------------------
_seed_model = None


def seed_baseline(clip_dir: Path, model_dir: Path, cores: int) -> float:
    """The seed project's way: a plain Python UDF, one model.predict call per row."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import udf

    model_path = str(model_dir)

    def classify(content):
        global _seed_model
        import numpy as np

        from udfs.audio import decode_audio
        from udfs.features import mfcc_features
        from udfs.labels import EMOTIONS

        if _seed_model is None:
            from udfs.model_format import load_keras_model, read_model_dir

            info = read_model_dir(Path(model_path))
            _seed_model = (load_keras_model(info), info.features)
        model, config = _seed_model
        features = mfcc_features(*decode_audio(content), config=config)
        return EMOTIONS[int(np.argmax(model.predict(features[None], verbose=0)[0]))]

    with executor_environment():  # the local workers fork from this process and inherit it
        spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "false")
            .getOrCreate()
        )
    try:
        frame = spark.read.format("binaryFile").load(str(clip_dir)).repartition(cores * 4)
        classify_udf = udf(classify, "string")
        frame.limit(cores * 2).select(classify_udf("content")).collect()  # warm the workers
        started = time.monotonic()
        count = len(frame.select("path", classify_udf("content")).collect())
        return count / (time.monotonic() - started)
    finally:
        spark.stop()


# (b), (d), (e) ------------------------------------------------------------------------------------
def process_tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of ``root`` and its descendants, by command (Linux /proc;
    {} elsewhere).

    Other work on the machine stretches wall time but hardly CPU time, so CPU per file
    compares two builds of the server better than files/s on a busy machine.
    """
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    totals: dict[str, float] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/comm").read_text().strip()
            children = [
                c
                for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()
            ]
        except OSError:
            continue
        totals[command] = totals.get(command, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
        pending.extend(int(c) for c in children)
    return totals


def server_figures(
    clip_dir: Path,
    first_dir: Path,
    home: Path,
    *,
    expected: int,
    runs: int = 2,
    conf: list[str] = (),
) -> dict:
    with bench_server(home, [clip_dir, first_dir], *(f"--conf={c}" for c in conf)) as server:
        cursor = server.connect().cursor()
        cursor.execute(f"CREATE TABLE first_clips USING binaryFile OPTIONS (path '{first_dir}')")
        t = time.monotonic()
        cursor.execute("SELECT path, emotion(content) FROM first_clips")
        first_rows = cursor.fetchall()
        first_s = time.monotonic() - t
        select1 = select1_latencies(cursor)
        cursor.execute(f"CREATE TABLE bench_clips USING binaryFile OPTIONS (path '{clip_dir}')")
        rates = []
        for _ in range(max(2, runs)):
            cpu_before = process_tree_cpu(server.pid)
            t = time.monotonic()
            cursor.execute("SELECT path, emotion(content) FROM bench_clips")
            count = len(cursor.fetchall())
            if count != expected:
                raise SystemExit(
                    f"the server classified {count} clips of {expected} under {clip_dir}"
                )
            rates.append(count / (time.monotonic() - t))
            cpu_after = process_tree_cpu(server.pid)
            cpu = {k: 1000 * (cpu_after[k] - cpu_before.get(k, 0.0)) / count for k in cpu_after}
            print(
                f"(b) run {len(rates)}: {rates[-1]:.1f} files/s; CPU ms per file: "
                + ", ".join(f"{k} {v:.2f}" for k, v in sorted(cpu.items()) if v >= 0.01),
                file=sys.stderr,
            )
        warm = rates[1:]
        return {
            "ready_s": server.ready_s,
            "first_s": first_s,
            "first_rows": len(first_rows),
            "server_fps": statistics.median(warm),
            "server_cold_fps": rates[0],
            "server_warm_runs": warm,
            "select1_p50": statistics.median(select1),
            "select1_p99": percentile(select1, 99),
        }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audio", default=str(PROJECT_ROOT.parent / "shared" / "ravdess"))
    parser.add_argument("--limit", type=int, default=0, help="use only the first N files (0: all)")
    parser.add_argument(
        "--model",
        default=str(PROJECT_ROOT / "models" / DEFAULT_MODEL),
        help="default: the shipped model",
    )
    parser.add_argument(
        "--skip-seed",
        action="store_true",
        help="leave out (c), the slow baseline (same as --parts ab)",
    )
    parser.add_argument(
        "--parts",
        default="abc",
        help="which of a (raw), b (server: b, d, e) and c (seed) to run; default all",
    )
    parser.add_argument(
        "--against",
        metavar="MODEL_DIR",
        help="with (a): measure --model and this model in turn and give the cost ratio",
    )
    parser.add_argument(
        "--pairs", type=int, default=5, help="with --against: runs of each model (default 5)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=2,
        help="server runs of (b); the first is cold, (b) is the median of the others",
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Spark setting for the server, repeatable",
    )
    args = parser.parse_args()
    if args.against and "a" not in args.parts:
        parser.error("--against compares the raw pipeline: it needs part a (--parts a...)")
    if args.pairs < 1:
        parser.error(f"--pairs must be at least 1, got {args.pairs}")
    if args.skip_seed:
        args.parts = args.parts.replace("c", "")
    files = sorted(
        p for p in Path(args.audio).rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg")
    )
    if args.limit:
        files = files[: args.limit]
    if not files:
        raise SystemExit(f"no audio under {args.audio}")
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="emoticana-bench-"))
    clip_dir, first_dir = work / "clips", work / "first"
    clip_dir.mkdir()
    first_dir.mkdir()
    for f in files:
        (clip_dir / f.name).symlink_to(f.resolve())
    for f in files[:8]:
        (first_dir / f.name).symlink_to(f.resolve())

    model_dir = Path(args.model)
    print(f"{len(files)} files from {args.audio}; model {model_dir}", file=sys.stderr)
    raw_fps = server = seed_fps = pairs = None
    if "a" in args.parts and args.against:
        pairs = cost_ratios(files, model_dir, Path(args.against), cores, args.pairs)
        raw_fps = statistics.median(mine for mine, _ in pairs)
    elif "a" in args.parts:
        raw_fps = raw_pipeline(files, model_dir, cores)
        print(f"(a) done: {raw_fps:.1f} files/s", file=sys.stderr)
    if "b" in args.parts:
        server = server_figures(
            clip_dir, first_dir, work / "home", expected=len(files), runs=args.runs, conf=args.conf
        )
        print(f"(b,d,e) done: {server}", file=sys.stderr)
    if "c" in args.parts:
        seed_fps = seed_baseline(clip_dir, model_dir, cores)
        print(f"(c) done: {seed_fps:.1f} files/s", file=sys.stderr)

    print(
        f"\nMachine: {platform.machine()}, {cores} cores, Python {platform.python_version()}; "
        f"{len(files)} files\n"
    )
    print("| measure | value | target |")
    print("| --- | --- | --- |")
    if raw_fps is not None:
        print(
            f"| (a) raw pipeline, no Spark, {cores} processes: decode + MFCC + batched model | "
            f"{raw_fps:.1f} files/s | |"
        )
    if pairs is not None:
        ratios = [theirs / mine for mine, theirs in pairs]
        theirs_fps = statistics.median(theirs for _, theirs in pairs)
        print(
            f"| (a) cost per clip against {args.against} ({theirs_fps:.1f} "
            f"files/s), {len(pairs)} pairs in turn | median {statistics.median(ratios):.2f} x "
            f"(pairs {min(ratios):.2f} to {max(ratios):.2f}) | |"
        )
    if server is not None:
        target = (
            ""
            if raw_fps is None
            else f">= 0.7 x (a) = {0.7 * raw_fps:.1f}: "
            f"{'met' if server['server_fps'] >= 0.7 * raw_fps else 'NOT met'}"
        )
        print(
            "| (b) server over JDBC, `SELECT path, emotion(content)`, warm | "
            f"{server['server_fps']:.1f} files/s (first run {server['server_cold_fps']:.1f}) | "
            f"{target} |"
        )
    if seed_fps is not None:
        target = (
            ""
            if server is None
            else f"(b) >= 10 x (c) = {10 * seed_fps:.1f}: "
            f"{'met' if server['server_fps'] >= 10 * seed_fps else 'NOT met'}"
        )
        print(
            "| (c) seed-style row-at-a-time UDF, `model.predict` per row | "
            f"{seed_fps:.1f} files/s | {target} |"
        )
    if server is not None:
        print(
            f"| (d) first classification query after ready ({server['first_rows']} clips) | "
            f"{server['first_s']:.2f} s | <= 5 s: "
            f"{'met' if server['first_s'] <= 5 else 'NOT met'} |"
        )
        print(
            "| (e) `SELECT 1` over PyHive, 200 queries | "
            f"p50 {1000 * server['select1_p50']:.1f} ms, "
            f"p99 {1000 * server['select1_p99']:.1f} ms | |"
        )
        print(f"| server start to ready | {server['ready_s']:.1f} s | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
