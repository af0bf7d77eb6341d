"""A real Spark standalone cluster on loopback: a master and two 1-core workers from pyspark's jars.

TensorFlowOnSpark trains with one node per executor on it; the server classifies a
table on it with the local server's results even when a worker (with its executor) is
killed in the middle of the query; nothing is left running afterwards.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from server.cluster import StandaloneCluster, free_port
from server.process import ServerProcess
from tests.audiogen import voiced_signal, write_clip
from tests.helpers import train
from udfs.audio import decode_audio
from udfs.features import DEFAULT_FEATURES, mfcc_features
from udfs.labels import EMOTIONS
from udfs.model_format import load_keras_model, read_model_dir
from udfs.model_store import DEFAULT_MODEL

pytestmark = pytest.mark.slow

#: Clips of the worker-kill query; one per partition, so the query is many short tasks.
KILL_CLIPS = 40
QUERY_TIMEOUT_S = 300
#: The shipped model, which both servers have.
MODEL = DEFAULT_MODEL
CLASSIFY = f"SELECT path, emotion(content, '{MODEL}') FROM cluster_clips ORDER BY path"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = StandaloneCluster(
        workers=2, cores=1, memory="2g", state_dir=tmp_path_factory.mktemp("cluster")
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clips_dir(audio_root) -> Path:
    # Under the local server's audio root: the SQL sandbox refuses table locations elsewhere.
    directory = audio_root / "cluster-clips"
    rng = np.random.default_rng(5)
    for index in range(KILL_CLIPS):
        samples = voiced_signal(
            rng, sample_rate=16000, seconds=1.0 + 0.5 * (index % 4), f0=80 + 3 * index
        )
        write_clip(directory / f"clip_{index:03d}.wav", samples, 16000, subtype="PCM_16")
    return directory


def classify(cursor, clips: Path) -> list[tuple[str, str]]:
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS cluster_clips USING binaryFile "
        f"OPTIONS (path '{clips}', pathGlobFilter '*.wav')"
    )
    # Spark packs files into a partition while the sum so far (each file counted with
    # openCostInBytes, here Spark's default 4 MB, not the server's 64 KB) plus the next
    # file's size stays under maxPartitionBytes: one clip each.
    cursor.execute("SET spark.sql.files.openCostInBytes=4MB")
    cursor.execute("SET spark.sql.files.maxPartitionBytes=4MB")
    cursor.execute(CLASSIFY)
    return [tuple(row) for row in cursor.fetchall()]


def rest(port: int, path: str):
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/v1/applications{path}", timeout=10
    ) as response:
        return json.loads(response.read().decode("utf-8"))


def app_dirs(cluster: StandaloneCluster, worker: int) -> list[Path]:
    return sorted((cluster.state_dir / "work" / f"worker-{worker}").glob("app-*"))


def processes_under(directory: Path) -> list[str]:
    """Live processes whose working directory lies under ``directory`` (daemons, executors,
    Python workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(os.readlink(proc / "cwd")).startswith(str(directory)):
                    found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes()[:200]!r}")
            except OSError:
                continue  # gone meanwhile, or not ours
    return found


def test_tfos_trains_one_node_per_executor_on_the_cluster(
    cluster, server, views, tmp_path, synth_dir
):
    """Also the run with validation speakers (the trainer's default), inference warps of its own
    and the training priors kept; the local run in test_training has none of these."""
    apps_before = [len(app_dirs(cluster, w)) for w in (1, 2)]
    result = train(
        server,
        tmp_path,
        "--view",
        "synth_train",
        "--name",
        "clustered",
        "--epochs",
        "3",
        "--patience",
        "3",
        "--nodes",
        "2",
        "--master",
        cluster.master_url,
        "--inference-warps",
        "0.94,1.06",
        "--class-priors",
        "training",
        # Batches small beside these few rows: tf.data reads ahead and drops a few batches' worth
        # of rows at the start, which a batch of the recipe's size would make many passes of the
        # feed (eight partitions each with two nodes).
        "--batch-size",
        "8",
        "--hyperparam",
        "filters=[8,8,16,16,16,16]",
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    directory = tmp_path / "models" / "clustered" / "1"
    for name in (
        "model.keras",
        "features.json",
        "labels.json",
        "manifest.json",
        "metrics.json",
        "view.sql",
    ):
        assert (directory / name).stat().st_size > 0, name
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["nodes"] == 2 and manifest["epochs_run"] == 3
    # Validation speakers: held out of training, their figures in metrics.json.
    assert manifest["validation_speakers"] and set(manifest["validation_speakers"]).isdisjoint(
        manifest["train_speakers"]
    )
    assert "validation speakers " in result.stdout
    metrics = json.loads((directory / "metrics.json").read_text())
    for key in (
        "unweighted_accuracy",
        "weighted_accuracy",
        "merged5_unweighted_accuracy",
        "confusion",
    ):
        assert key in metrics["validation"]
    assert np.asarray(metrics["validation"]["confusion"]).sum() == 16
    # The inference warps asked for, and the training priors kept: no prior correction.
    assert manifest["inference_warps"] == [0.94, 1.06]
    assert manifest["class_priors"] == "training" and "equally likely" not in result.stdout
    info = read_model_dir(directory, expected_features=DEFAULT_FEATURES)
    model = load_keras_model(info)
    assert model.get_layer("warp_variants").factors == (0.94, 1.06)  # the outermost layers
    y, rate = decode_audio((synth_dir / "spk3_sad_1.wav").read_bytes())
    probabilities = model.predict(mfcc_features(y, rate)[None], verbose=0)[0]
    assert probabilities.shape == (8,) and abs(float(probabilities.sum()) - 1) < 1e-4
    assert info.labels == EMOTIONS
    # The trainer was an application of this cluster, with an executor on each worker; the chief's
    # per-epoch lines are in its executor's log.
    new_apps = [app_dirs(cluster, w)[apps_before[i] :] for i, w in enumerate((1, 2))]
    assert all(len(apps) == 1 for apps in new_apps), new_apps
    logs = "".join(
        p.read_text(errors="replace") for apps in new_apps for p in apps[0].glob("*/std*")
    )
    assert "epoch   3/3" in logs
    print(f"\n2-node TensorFlowOnSpark on the cluster: {manifest['training_seconds']:.0f} s")
    # Each executor imported the project from the shipped zip, not from the driver's checkout.
    assert all(list(apps[0].glob("*/emoticana-*.zip")) for apps in new_apps)


def test_classification_survives_a_killed_worker_and_nothing_is_left(
    cluster, server, clips_dir, tmp_path
):
    local_cursor = server.connect().cursor()
    local = classify(local_cursor, clips_dir)
    assert len(local) == KILL_CLIPS and {emotion for _, emotion in local} - {None}

    ui_port = free_port()
    clustered = ServerProcess(
        home=tmp_path / "home",
        audio_roots=[clips_dir],
        extra_args=[
            "--master",
            cluster.master_url,
            "--conf",
            f"spark.ui.port={ui_port}",
            "--conf",
            "spark.executor.memory=1g",
        ],
    ).start()
    try:
        status = cluster.status()
        assert [app["name"] for app in status["activeapps"]] == ["Emoticana"]
        app_id = rest(ui_port, "")[0]["id"]
        outcome: dict = {}

        def run_query():
            try:
                outcome["rows"] = classify(clustered.connect().cursor(), clips_dir)
            except Exception as exc:  # reported by the assertion below
                outcome["error"] = exc

        query = threading.Thread(target=run_query, daemon=True)
        started = time.monotonic()
        query.start()
        deadline = time.monotonic() + QUERY_TIMEOUT_S
        while time.monotonic() < deadline and query.is_alive():
            running = sorted(
                rest(ui_port, f"/{app_id}/jobs?status=running"), key=lambda job: job["numTasks"]
            )[-1:]
            # Kill as soon as the classification job has tasks done: on an idle machine the
            # whole query takes only a few seconds.
            if (
                running
                and running[0]["numTasks"] >= KILL_CLIPS // 2
                and running[0]["numCompletedTasks"] >= 1
            ):
                break
            time.sleep(0.05)
        assert query.is_alive(), "the query finished before a worker could be killed"
        cluster.kill_worker(1)
        killed_at, tasks = running[0]["numCompletedTasks"], running[0]["numTasks"]
        query.join(QUERY_TIMEOUT_S)
        assert not query.is_alive(), "the query did not finish after the worker was killed"
        print(
            f"with worker 2 killed after {killed_at} of {tasks} tasks: "
            f"{time.monotonic() - started:.1f} s"
        )
        assert "error" not in outcome, outcome.get("error")
        # The killed worker's tasks ran again on the other: the same answers as the local server.
        assert outcome["rows"] == local
        assert killed_at < tasks
        # Writes commit through the server's protocol (spark.sql.sources.commitProtocolClass),
        # which the executors load from the server's jar.
        writer = clustered.connect().cursor()
        writer.execute("CREATE TABLE cluster_written USING parquet AS SELECT id FROM range(4)")
        writer.execute("INSERT OVERWRITE cluster_written SELECT id FROM range(10, 12)")
        writer.execute("SELECT count(*), sum(id) FROM cluster_written")
        assert writer.fetchall() == [(2, 21)]
        executors = [e for e in rest(ui_port, f"/{app_id}/allexecutors") if e["id"] != "driver"]
        assert sorted(e["isActive"] for e in executors) == [False, True], executors
    finally:
        clustered.stop()
    cluster.stop()
    assert cluster.processes_left() == []
    assert processes_under(cluster.state_dir) == []
