"""``emotion()`` on the same speech as a clip and as a longer recording, under recording
conditions (not part of the test suite).

    .venv/bin/python bench/long_recordings.py --audio ../shared/ravdess [--per-emotion 12]

Draws ``--per-emotion`` RAVDESS clips of each emotion (seeded), writes each as it is and played
twice with 0.3 s between (about 7 s: the long-recording path, ``docs/long-recordings.md``) into a
temporary directory, and asks a server of its own ``emotion(degrade(content, condition, 1))`` of
both tables. Prints, per condition, the 8-class unweighted accuracy of each form (a NULL answer
counts as wrong) and how many answers are NULL. The clips may be ones the model was trained on:
the two forms are compared, not the model's accuracy on new voices. About 1 min.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.common import bench_server  # noqa: E402
from udfs.labels import EMOTIONS  # noqa: E402
from udfs.ravdess import parse_ravdess_name  # noqa: E402

CONDITIONS = "clean,noise:10,noise:5,noise:0,telephone+noise:10,reverb:0.5"


def write_clips(audio: Path, out: Path, per_emotion: int, seed: int) -> int:
    """The drawn clips into ``out/clip`` and, played twice, into ``out/recording``."""
    import numpy as np
    import soundfile as sf

    by_emotion = defaultdict(list)
    for path in sorted(audio.rglob("*.flac")) + sorted(audio.rglob("*.wav")):
        meta = parse_ravdess_name(str(path))
        if meta is not None:
            by_emotion[meta.emotion].append(path)
    rng = np.random.default_rng(seed)
    for kind in ("clip", "recording"):
        (out / kind).mkdir()
    count = 0
    for emotion in (e for e in EMOTIONS if e in by_emotion):
        paths = by_emotion[emotion]
        for index in rng.choice(len(paths), min(per_emotion, len(paths)), False):
            path = paths[index]
            y, rate = sf.read(path, dtype="float32")
            sf.write(out / "clip" / f"{path.stem}.flac", y, rate)
            twice = np.concatenate([y, np.zeros((int(0.3 * rate),) + y.shape[1:], y.dtype), y])
            sf.write(out / "recording" / f"{path.stem}.flac", twice, rate)
            count += 1
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--audio", type=Path, required=True, help="RAVDESS's folder")
    parser.add_argument("--per-emotion", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conditions", default=CONDITIONS, help="comma-separated")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="emoticana-long-"))
    try:
        return measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args, work: Path) -> int:
    count = write_clips(args.audio, work, args.per_emotion, args.seed)
    if not count:
        print(f"long_recordings: no RAVDESS-named clips under {args.audio}", file=sys.stderr)
        return 2
    print(f"{count} clips from {args.audio}; 8-class UA (NULL counts as wrong), NULL answers")
    print(f"{'condition':20s} {'clip':>6s} {'NULL':>5s} {'twice':>6s} {'NULL':>5s}")
    with bench_server(work / "home", [work]) as server:
        cursor = server.connect().cursor()
        for kind in ("clip", "recording"):
            cursor.execute(
                f"CREATE OR REPLACE TEMPORARY VIEW {kind}s USING binaryFile "
                f"OPTIONS (path '{work / kind}', pathGlobFilter '*.flac')"
            )
        for condition in args.conditions.split(","):
            audio = "content" if condition == "clean" else f"degrade(content, '{condition}', 1)"
            line = f"{condition:20s}"
            for kind in ("clip", "recording"):
                cursor.execute(f"SELECT ravdess_meta(path).emotion, emotion({audio}) FROM {kind}s")
                right = defaultdict(list)
                nulls = 0
                for label, answer in cursor.fetchall():
                    right[label].append(answer == label)
                    nulls += answer is None
                ua = sum(sum(v) / len(v) for v in right.values()) / len(right)
                line += f" {ua:6.3f} {nulls:5d}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
