"""Real-time factor of ``emotion_segments`` on long recordings (not part of the test suite).

    .venv/bin/python bench/bench_segments.py --audio ../shared/ravdess [--files 6] [--minutes 10]

Builds ``--files`` recordings of ``--minutes`` each from RAVDESS clips joined by 0.5-3 s of
silence (16 kHz FLAC, in a temporary directory), then measures, on the same files:

  (a) a plain Python loop: ``udfs.segments.source_segments`` with the shipped model, the files
      shared by 2 processes (one per core), TensorFlow with one thread each, as in the server;
  (b) the server over JDBC: ``SELECT count(*), sum(end_s - start_s) FROM recordings c,
      LATERAL emotion_segments(c.path) s``, one task per file, warm (after one run).

and prints hours of audio, wall time and the real-time factor (audio seconds per wall second)
of each, and (b) / (a).  Targets (issue #27): (b) at least 500 x real time, (b) >= 0.8 x (a).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.common import bench_server  # noqa: E402


def build_recordings(audio: Path, out: Path, files: int, minutes: float, seed: int = 1) -> float:
    """Write ``files`` recordings of RAVDESS clips and silences; their total seconds."""
    import numpy as np
    import soundfile as sf

    from udfs.features import DEFAULT_FEATURES, mono_at_rate

    clips = sorted(audio.rglob("*.flac")) + sorted(audio.rglob("*.wav"))
    if not clips:
        sys.exit(f"no clips under {audio}")
    rng = np.random.default_rng(seed)
    rate = DEFAULT_FEATURES.sample_rate
    total = 0.0
    for index in range(files):
        path = out / f"recording_{index:02d}.flac"
        written = 0
        with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, format="FLAC") as handle:
            while written < minutes * 60 * rate:
                y, clip_rate = sf.read(str(clips[rng.integers(len(clips))]), dtype="float32")
                part = np.concatenate(
                    [mono_at_rate(y.T, clip_rate), np.zeros(int(rng.uniform(0.5, 3.0) * rate))]
                )
                part = part[: int(minutes * 60 * rate) - written]
                handle.write(part.astype(np.float32))
                written += len(part)
        total += written / rate
    return total


def _loop_worker(paths: list[str]) -> tuple[int, float]:
    os.environ.setdefault("EMOTICANA_TF_THREADS", "1")
    from udfs import model_cache
    from udfs.features import DEFAULT_FEATURES
    from udfs.inference import _predictor
    from udfs.model_store import ModelStore
    from udfs.segments import source_segments

    info = ModelStore((str(PROJECT_ROOT / "models"),), DEFAULT_FEATURES).active()
    predict = _predictor(info)
    model_cache.get_model(info)
    rows, speech = 0, 0.0
    for path in paths:
        for segment in source_segments(path, (str(Path(path).parent),), predict):
            rows += 1
            speech += segment.duration_s
    return rows, speech


def plain_loop(paths: list[str], processes: int = 2) -> tuple[float, int, float]:
    """Wall seconds (model loading excluded), rows, speech seconds."""
    shares = [paths[i::processes] for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        pool.map(_loop_worker, [[] for _ in range(processes)])  # import TF, load the model
        started = time.monotonic()
        results = pool.map(_loop_worker, shares)
        wall = time.monotonic() - started
    return wall, sum(r for r, _ in results), sum(s for _, s in results)


def over_jdbc(work: Path, directory: Path, files: int, runs: int) -> list[tuple[float, int, float]]:
    results = []
    with bench_server(work / "home", [directory]) as server:
        cursor = server.connect().cursor()
        cursor.execute(
            "CREATE OR REPLACE TEMPORARY VIEW recording_files USING binaryFile "
            f"OPTIONS (path '{directory}', pathGlobFilter '*.flac')"
        )
        cursor.execute(
            f"CREATE OR REPLACE TEMPORARY VIEW recordings AS SELECT /*+ REPARTITION({files}) */ "
            "path FROM recording_files"
        )
        query = (
            "SELECT count(*), sum(s.end_s - s.start_s) "
            "FROM recordings c, LATERAL emotion_segments(c.path) s"
        )
        for _ in range(runs + 1):
            started = time.monotonic()
            cursor.execute(query)
            ((count, speech),) = cursor.fetchall()
            results.append((time.monotonic() - started, int(count), float(speech)))
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--audio", default=str(PROJECT_ROOT.parent / "shared" / "ravdess"))
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--parts", default="ab")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-segments-"))
    directory = work / "recordings"
    directory.mkdir()
    audio_s = build_recordings(Path(args.audio), directory, args.files, args.minutes)
    paths = sorted(str(p) for p in directory.glob("*.flac"))
    print(f"{args.files} recordings, {audio_s / 3600:.2f} h of audio, in {directory}")
    lines = []
    loop_rtf = None
    if "a" in args.parts:
        wall, rows, speech = plain_loop(paths)
        loop_rtf = audio_s / wall
        lines.append(("(a) plain loop, 2 processes", wall, loop_rtf, rows, speech))
    if "b" in args.parts:
        for run, (wall, rows, speech) in enumerate(
            over_jdbc(work, directory, args.files, args.runs)
        ):
            lines.append(
                (f"(b) JDBC emotion_segments, run {run + 1}", wall, audio_s / wall, rows, speech)
            )
    print("| measure | wall s | x real time | rows | speech s |")
    print("| --- | --- | --- | --- | --- |")
    for name, wall, rtf, rows, speech in lines:
        print(f"| {name} | {wall:.1f} | {rtf:.0f} | {rows} | {speech:.0f} |")
    sql = [rtf for name, _, rtf, _, _ in lines if name.startswith("(b)")]
    if loop_rtf and sql:
        print(
            f"(b) / (a): {max(sql) / loop_rtf:.2f} (target >= 0.8); (b) target >= 500 x real time"
        )


if __name__ == "__main__":
    main()
