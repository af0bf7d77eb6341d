"""TensorFlowOnSpark training: local (1 node) against a 2-worker standalone cluster (2 nodes).

    .venv/bin/python bench/bench_cluster_training.py [--view ravdess_train --ravdess DIR] \\
        [--epochs 3]

Starts a local-mode server (it computes the features), defines a training view (by default
4 generated speakers x 8 emotions x 4 clips, each emotion its own pitch; with ``--ravdess``
the RAVDESS view of ``sql/training/ravdess.sql``), then trains the same recipe twice: with
``--nodes 1`` in local mode, and with ``--nodes 2`` on a standalone master and two 1-core
workers on 127.0.0.1.  Prints wall time and validation UA of both, then stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.bench_cluster import cluster_server  # noqa: E402
from server.cluster import StandaloneCluster  # noqa: E402


def synthetic_clips(directory: Path) -> None:
    import numpy as np

    from tests.audiogen import voiced_signal, write_clip
    from udfs.labels import EMOTIONS

    rng = np.random.default_rng(11)
    for speaker in range(1, 5):
        for index, emotion in enumerate(EMOTIONS):
            for take in range(1, 5):
                samples = voiced_signal(
                    rng, sample_rate=16000, seconds=0.8, f0=90 + 28 * index + 4 * speaker
                )
                write_clip(
                    directory / f"spk{speaker}_{emotion}_{take}.wav",
                    samples,
                    16000,
                    subtype="PCM_16",
                )


def train(
    port: int, home: Path, models: Path, name: str, nodes: int, master: str | None, args
) -> dict:
    command = [
        sys.executable,
        "-m",
        "server",
        "train",
        "--port",
        str(port),
        "--home",
        str(home),
        "--models-dir",
        str(models),
        "--view",
        args.view,
        "--name",
        name,
        "--nodes",
        str(nodes),
        "--epochs",
        str(args.epochs),
        "--patience",
        str(args.epochs),
    ]
    if args.validation_speakers:
        command += ["--validation-speakers", args.validation_speakers]
    if master:
        command += ["--master", master]
    started = time.monotonic()
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"training {name} failed:\n{result.stderr[-3000:]}")
    manifest = json.loads((models / name / "1" / "manifest.json").read_text())
    metrics = json.loads((models / name / "1" / "metrics.json").read_text())
    return {
        "name": name,
        "nodes": nodes,
        "wall": wall,
        "tfos": manifest["training_seconds"],
        "ua": metrics["validation"]["unweighted_accuracy"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--view", default="bench_synth_train")
    parser.add_argument(
        "--ravdess", help="RAVDESS directory: train on sql/training/ravdess.sql's view instead"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--validation-speakers",
        help="default: speaker 2 of the generated set; the trainer's choice with --ravdess",
    )
    args = parser.parse_args()
    if not args.ravdess and not args.validation_speakers:
        args.validation_speakers = "2"
    work = Path(tempfile.mkdtemp(prefix="emoticana-bench-train-"))
    clips = work / "clips"
    home = work / "home"
    if not args.ravdess:
        synthetic_clips(clips)
    with cluster_server(
        "local[*]", home, Path(args.ravdess).absolute() if args.ravdess else clips
    ) as server:
        port = server.port
        if args.ravdess:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "server",
                    "sql",
                    "sql/training/ravdess.sql",
                    "--port",
                    str(port),
                    "--hivevar",
                    f"ravdess_dir={args.ravdess}",
                ],
                cwd=PROJECT_ROOT,
                check=True,
                timeout=600,
            )
        else:
            cursor = server.connect().cursor()
            cursor.execute(
                f"CREATE TABLE bench_synth USING binaryFile OPTIONS (path '{clips}', "
                "pathGlobFilter '*.wav')"
            )
            cursor.execute(
                "CREATE OR REPLACE VIEW bench_synth_train AS SELECT content, "
                "regexp_extract(path, '_([a-z]+)_', 1) AS label, "
                "regexp_extract(path, 'spk([0-9]+)_', 1) AS speaker FROM bench_synth"
            )
        local = train(port, home, work / "models", "local", 1, None, args)
        with StandaloneCluster(
            workers=2, cores=1, memory="2g", state_dir=work / "cluster"
        ) as cluster:
            clustered = train(port, home, work / "models", "cluster", 2, cluster.master_url, args)
    print(
        f"\nMachine: {os.cpu_count()} cores (shared); view {args.view}; {args.epochs} epochs; "
        f"validation speakers {args.validation_speakers}\n"
    )
    print("| run | TF nodes | trainer wall time | TensorFlowOnSpark run | validation UA |")
    print("| --- | --- | --- | --- | --- |")
    for r in (local, clustered):
        print(
            f"| {r['name']} | {r['nodes']} | {r['wall']:.0f} s | {r['tfos']:.0f} s | "
            f"{r['ua']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
