"""TensorFlowOnSpark training end to end from a SQL view, on generated audio."""

import contextlib
import csv
import hashlib
import ipaddress
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest

from server.process import PROJECT_ROOT
from tests.helpers import train, train_command
from training import recipe
from training.network import balancing_factors
from training.node import NODE_ERROR_FILE, NODE_HISTORY_FILE, drop_single_node_cluster
from training.sources import (
    FEATURES_TABLE_PREFIX,
    TrainingDataError,
    drop_features,
    prepare_features,
)
from training.trainer import (
    TrainingError,
    TrainOptions,
    check_options,
    current_umask,
    reserve_on,
    wait_for_chief,
)
from udfs.audio import decode_audio
from udfs.errors import ConfigError
from udfs.features import DEFAULT_FEATURES, mfcc_features
from udfs.labels import EMOTIONS
from udfs.model_format import CV_PREDICTIONS_FILE, HISTORY_FILE, load_keras_model, read_model_dir

# Tests using the server (or the views, or the trained model) are slow: see conftest.SLOW_FIXTURES.


def nested_layers(layer):
    """Every layer inside ``layer`` (models within models included), depth first."""
    for inner in getattr(layer, "layers", []):
        yield inner
        yield from nested_layers(inner)


def test_trainer_features_are_the_udf_features(views, synth_dir):
    prepared = prepare_features(views, "synth_train")
    try:
        assert (prepared.rows, prepared.usable_rows, prepared.unreadable) == (65, 64, 1)
        assert prepared.label_counts == {name: 8 for name in EMOTIONS}
        assert prepared.speakers == ["1", "2", "3", "4"]
        table = pq.read_table(prepared.location.removeprefix("file:")).to_pandas()
        row = table[table.features.notna()].iloc[0]
        views.execute(
            "SELECT content FROM synth_train "
            f"WHERE speaker = '{row.speaker}' AND label = '{row.label}'"
        )
        candidates = [
            mfcc_features(*decode_audio(content)).ravel() for (content,) in views.fetchall()
        ]
        served = np.asarray(row.features, np.float32)
        # Same function; only BLAS summation order may differ between processes.
        assert min(np.abs(served - c).max() for c in candidates) < 1e-3
    finally:
        drop_features(views, prepared.table)


def test_a_kept_features_table_is_read_again_by_its_printed_or_bare_name(views):
    prepared = prepare_features(views, "synth_train")
    try:
        bare = prepared.table.removeprefix("emoticana.")
        assert bare.startswith(FEATURES_TABLE_PREFIX) and bare != prepared.table
        for name in (prepared.table, bare):
            again = prepare_features(views, "synth_train", reuse=name)
            assert again.table == prepared.table
            assert (again.rows, again.usable_rows, again.label_counts, again.speakers) == (
                prepared.rows,
                prepared.usable_rows,
                prepared.label_counts,
                prepared.speakers,
            )
        for name, message in [
            ("default.synth_train", "must name a table that emoticana train kept"),
            (f"{prepared.table} LIMIT 1", "must name a table that emoticana train kept"),
            (f"{FEATURES_TABLE_PREFIX}none", "cannot be read"),
        ]:
            with pytest.raises(TrainingDataError, match=message):
                prepare_features(views, "synth_train", reuse=name)
    finally:
        drop_features(views, prepared.table)


@pytest.mark.parametrize(
    "view,message",
    [
        ("synth_empty", "has no rows"),
        ("synth_badlabel", "labels outside neutral, calm, happy"),
        ("synth_nospeaker", "has no speaker column 'speaker'"),
        ("no_such_view", "does not exist"),
        ("synth_orphan", "cannot be read on the server: [TABLE_OR_VIEW_NOT_FOUND]"),
    ],
)
def test_bad_views_fail_with_one_clear_line(server, views, tmp_path, view, message):
    result = train(server, tmp_path, "--view", view, "--epochs", "1", timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    error_lines = [
        line for line in result.stderr.splitlines() if line.startswith("emoticana: error:")
    ]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-3000:]
    assert not (tmp_path / "models" / "emoticana").exists()
    views.execute("SHOW TABLES IN emoticana")
    assert not [row for row in views.fetchall() if row[1].startswith(FEATURES_TABLE_PREFIX)]


def test_a_terminated_trainer_drops_its_features_table_and_writes_no_model(server, views, tmp_path):
    import signal
    import time

    command = train_command(server, tmp_path, "--view", "synth_train", "--epochs", "1000")
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # The feed (training.feeding) logs each partition it feeds on stderr: read it all the while,
    # so that the pipe never fills, and note the first.
    stderr_lines: list[str] = []
    feeding = threading.Event()

    def read_stderr():
        for line in process.stderr:
            stderr_lines.append(line)
            if "Feeding partition" in line:
                feeding.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        for (
            line
        ) in process.stdout:  # the features table exists once the trainer says what it trains on
            if line.startswith("training on ") or time.monotonic() > deadline:
                break
        assert line.startswith("training on "), line
        views.execute("SHOW TABLES IN emoticana")
        assert [row for row in views.fetchall() if row[1].startswith(FEATURES_TABLE_PREFIX)]
        # Into the epochs (1,000 of them would take many minutes): the feed is running.
        assert feeding.wait(300), "".join(stderr_lines)[-3000:]
        process.send_signal(signal.SIGTERM)
        threading.Thread(target=process.stdout.read, daemon=True).start()
        process.wait(120)
        reader.join(30)
    finally:
        process.kill()
    stderr = "".join(stderr_lines)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "emoticana: stopping on SIGTERM: dropping the features table" in stderr
    views.execute("SHOW TABLES IN emoticana")
    assert not [row for row in views.fetchall() if row[1].startswith(FEATURES_TABLE_PREFIX)]
    assert not list((tmp_path / "models").glob("emoticana/[0-9]*"))


def test_an_interrupt_that_py4j_and_the_trainer_wrap_still_ends_the_run_as_stopped():
    # The signal handler's KeyboardInterrupt raised inside a py4j call comes back as py4j's
    # network error, which the trainer wraps (from None) as a failed run.
    from py4j.protocol import Py4JNetworkError

    from training.trainer import TrainingError, caused_by_interrupt

    def wrapped(first: BaseException):
        try:
            try:
                raise first
            except BaseException:
                raise Py4JNetworkError("Answer from Java side is empty")  # noqa: B904 (as py4j)
        except Exception:
            raise TrainingError("TensorFlowOnSpark training failed") from None

    with pytest.raises(TrainingError) as interrupted:
        wrapped(KeyboardInterrupt())
    assert caused_by_interrupt(interrupted.value)
    with pytest.raises(TrainingError) as failed:
        wrapped(OSError("connection reset"))
    assert not caused_by_interrupt(failed.value)
    assert not caused_by_interrupt(TrainingError("a node failed"))


def non_loopback_listeners() -> dict[tuple[str, int], str]:
    """(address, port) -> socket inode of every listening TCP socket on this machine not bound to
    loopback."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A":  # TCP_LISTEN
                continue
            hex_address, hex_port = local.split(":")
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(
                bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8)
            )
            address = ipaddress.ip_address(raw)
            address = getattr(address, "ipv4_mapped", None) or address
            if not address.is_loopback:
                found[(str(address), int(hex_port, 16))] = inode
    return found


def socket_owners(inode: str) -> list[int]:
    """The processes holding socket ``inode`` open."""
    owners = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == f"socket:[{inode}]" for fd in fd_dir.iterdir()):
                owners.append(int(fd_dir.parent.name))
        except OSError:
            continue  # gone meanwhile
    return owners


def descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # ppid
        except (OSError, IndexError, ValueError):
            return False
    return pid == ancestor


@contextlib.contextmanager
def new_non_loopback_listeners(interval: float = 0.05):
    """The non-loopback listeners that this process or its descendants open while the block runs.

    Polled every ``interval`` s (and once more at the end); a listener of another process on
    the machine is not counted.
    """
    before, seen, done, failure = set(non_loopback_listeners()), set(), threading.Event(), []

    def check():
        for listener, inode in non_loopback_listeners().items():
            if listener not in before and listener not in seen:
                if any(descends_from(pid, os.getpid()) for pid in socket_owners(inode)):
                    seen.add(listener)

    def poll():
        try:
            while not done.wait(interval):
                check()
        except Exception as exc:  # surfaced in the test, not lost with the thread
            failure.append(exc)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()
        if failure:
            raise failure[0]
        check()


def test_the_reservation_server_listens_on_the_driver_host_only(monkeypatch):
    from tensorflowonspark import reservation

    # Undone after the test: the patched method and the environment variable.
    monkeypatch.setattr(
        reservation.Server, "start_listening_socket", reservation.Server.start_listening_socket
    )
    monkeypatch.setenv(reservation.TFOS_SERVER_HOST, "unset-by-test")
    reserve_on("127.0.0.1")
    server = reservation.Server(1)
    with new_non_loopback_listeners() as opened:
        host, port = server.start()
        try:
            client = reservation.Client((host, port))
            client.register({"executor_id": 0, "host": "127.0.0.1", "port": 1})
            assert client.await_reservations() == [
                {"executor_id": 0, "host": "127.0.0.1", "port": 1}
            ]
            assert host == "127.0.0.1"
            assert not opened, opened
            # closes the listening socket now (stop() waits for select's 60 s)
            client.request_stop()
            client.close()
        finally:
            server.stop()


def test_a_reservation_port_in_use_is_one_clear_error(monkeypatch):
    import socket

    from tensorflowonspark import reservation

    from training.trainer import TrainingError

    monkeypatch.setattr(
        reservation.Server, "start_listening_socket", reservation.Server.start_listening_socket
    )
    monkeypatch.setenv(reservation.TFOS_SERVER_HOST, "unset-by-test")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        monkeypatch.setenv(reservation.TFOS_SERVER_PORT, str(port))
        reserve_on("127.0.0.1")
        with pytest.raises(
            TrainingError, match=rf"reservation server cannot listen on 127.0.0.1 \(port {port}\)"
        ):
            reservation.Server(1).start()


@pytest.mark.parametrize(
    "cluster, dropped",
    [
        ({"chief": ["127.0.0.1:4000"]}, True),
        ({"chief": ["127.0.0.1:4000"], "worker": ["127.0.0.1:4001"]}, False),
    ],
)
def test_one_node_runs_its_strategy_without_a_tensorflow_server(cluster, dropped):
    environ = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})}
    assert drop_single_node_cluster(environ) is dropped
    assert ("TF_CONFIG" in environ) is not dropped
    assert drop_single_node_cluster({}) is False


#: The one local TensorFlowOnSpark run: a 2-fold speaker cross-validation, then the final model on
#: every speaker (the shipped recipe's path, ``make train-default``), with a seed of its own. Its
#: model goes to the session server's model directory, so SQL can use it by name. (The path with
#: validation speakers, non-default inference warps and training priors is the cluster run's.)
TRAIN_ARGS = (
    "--view",
    "synth_train",
    "--name",
    "synthetic",
    "--epochs",
    "2",
    "--cv-folds",
    "2",
    "--validation-speakers",
    "none",
    "--selection",
    "last",
    "--seed",
    "3",
    "--hyperparam",
    "filters=[8,8,16,16,16,16]",
)


@pytest.fixture(scope="module")
def trained(server, views):
    """The trainer's output and its model directory (``synthetic/1`` of the session server)."""
    with new_non_loopback_listeners() as opened:
        result = train(server, server.home, *TRAIN_ARGS)
    return SimpleNamespace(
        result=result, opened=opened, directory=server.home / "models" / "synthetic" / "1"
    )


def test_tfos_training_writes_a_complete_model_that_predicts(trained, synth_dir):
    result, opened = trained.result, trained.opened
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    # Every server of the run (Spark, TensorFlowOnSpark's reservations, TensorFlow) on loopback
    # only.
    assert not opened, opened
    assert "1 unreadable clips skipped" in result.stdout
    assert "epoch   2/2" in result.stdout + result.stderr
    directory = trained.directory
    assert directory.stat().st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700
    for name in (
        "model.keras",
        "features.json",
        "labels.json",
        "manifest.json",
        "metrics.json",
        "view.sql",
        "confusion.csv",
        "confusion.png",
        "curves.png",
        "history.json",
        "cv_predictions.csv",
    ):
        assert (directory / name).stat().st_size > 0, name
    info = read_model_dir(directory, expected_features=DEFAULT_FEATURES)
    assert info.labels == EMOTIONS and info.version == 1
    manifest = info.manifest
    assert manifest["view"] == "synth_train" and manifest["skipped_unreadable"] == 1
    assert (manifest["selection"], manifest["epochs_run"]) == ("last", 2)
    assert "last epoch of 2 run" in result.stdout
    assert manifest["inference_warps"] == list(recipe.INFERENCE_WARPS)  # the recipe's default
    # The recipe's default priors: the training frequencies are divided out in the saved model.
    assert (
        manifest["class_priors"] == "balanced"
        and sum(manifest["class_counts"]) == manifest["train_rows"]
    )
    assert len(manifest["class_counts"]) == len(EMOTIONS)  # in label order
    assert "probabilities for equally likely emotions" in result.stdout
    assert len(manifest["files_digest_sha256"]) == 64
    assert "synth" in (directory / "view.sql").read_text()
    # The manifest records every hyperparameter the node built with, --seed among them.
    assert manifest["hyperparams"]["seed"] == 3 and manifest["seed"] == 3
    assert set(manifest["hyperparams"]) == set(recipe.DEFAULT_HYPERPARAMS)
    history = json.loads((directory / HISTORY_FILE).read_text())
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"])), history
    model = load_keras_model(info)
    # ... and the node built with them: LevelShift is seeded seed + 6.
    assert [layer.seed for layer in nested_layers(model) if layer.name == "augment_level"] == [
        3 + 6
    ]
    (priors,) = [layer for layer in nested_layers(model) if layer.name == "balance_priors"]
    assert priors.factors == pytest.approx(balancing_factors(manifest["class_counts"]))
    # After a cross-validation the model is calibrated on its folds' held-out predictions.
    assert model.layers[-1].name == "calibrate"
    assert model.layers[-1].temperature == pytest.approx(manifest["temperature"])
    y, rate = decode_audio((synth_dir / "spk3_sad_1.wav").read_bytes())
    probabilities = model.predict(mfcc_features(y, rate)[None], verbose=0)[0]
    assert probabilities.shape == (8,) and abs(float(probabilities.sum()) - 1) < 1e-4


def test_without_validation_speakers_every_speaker_trains_and_the_figures_come_from_cv(
    trained, synth_dir
):
    result = trained.result
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    assert (
        "no validation speakers (all 4 trained on); cross-validation by speaker UA" in result.stdout
    )
    directory = trained.directory
    info = read_model_dir(directory, expected_features=DEFAULT_FEATURES)
    assert info.manifest["validation_speakers"] == [] and sorted(
        info.manifest["train_speakers"]
    ) == ["1", "2", "3", "4"]
    assert info.manifest["validation_rows"] == 0 and info.manifest["train_rows"] == 64
    assert info.manifest["best_epoch"] is None  # nothing was chosen on validation speakers
    metrics = json.loads((directory / "metrics.json").read_text())
    assert "validation" not in metrics and len(metrics["cross_validation"]["folds"]) == 2
    assert all(fold["validation_speakers"] == [] for fold in metrics["cross_validation"]["folds"])
    # Each fold also reports its model's decisions under the training priors (paired with the
    # balanced ones).
    assert all(
        0 <= fold["with_training_priors"]["unweighted_accuracy"] <= 1
        for fold in metrics["cross_validation"]["folds"]
    )
    assert result.stdout.count("(UA with training priors ") == 3  # each fold and the summary
    # Every usable clip is a test clip once: the pooled confusion is the one written out.
    assert np.asarray(metrics["cross_validation"]["confusion"]).sum() == 64
    written = np.loadtxt(
        directory / "confusion.csv", delimiter=",", skiprows=1, usecols=range(1, 9)
    )
    assert written.tolist() == metrics["cross_validation"]["confusion"]
    # Every clip's prediction by the fold model that did not hear its speaker, with the clip's
    # SHA-256.
    assert not [key for key in metrics if key.startswith("cross_validation_by_")]
    with (directory / CV_PREDICTIONS_FILE).open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 64 and len({row["clip_sha256"] for row in rows}) == 64
    assert {row["cv_by"] for row in rows} == {"speaker"}
    fold_of = {row["speaker"]: row["fold"] for row in rows}
    assert sorted(fold_of) == ["1", "2", "3", "4"] and all(
        fold_of[row["speaker"]] == row["fold"] for row in rows
    )
    for number, fold in enumerate(metrics["cross_validation"]["folds"], start=1):
        assert sorted(s for s, f in fold_of.items() if f == str(number)) == sorted(
            fold["test_speakers"]
        )
    probabilities = np.array([[float(row[e]) for e in EMOTIONS] for row in rows])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert [row["predicted"] for row in rows] == [EMOTIONS[i] for i in probabilities.argmax(axis=1)]
    pooled = np.zeros((8, 8), dtype=int)
    for row in rows:
        pooled[EMOTIONS.index(row["label"]), EMOTIONS.index(row["predicted"])] += 1
    assert pooled.tolist() == metrics["cross_validation"]["confusion"]
    clip = next(
        row
        for row in rows
        if row["clip_sha256"]
        == hashlib.sha256((synth_dir / "spk3_sad_2.wav").read_bytes()).hexdigest()
    )
    assert (clip["speaker"], clip["label"]) == ("3", "sad")
    # No validation curve of NaNs: history.json is strict JSON with the training series only.
    history = json.loads(
        (directory / "history.json").read_text(),
        parse_constant=lambda name: pytest.fail(f"{name} in history.json"),
    )
    assert sorted(history) == ["accuracy", "loss"] and len(history["loss"]) == 2


def test_the_trained_model_predicts_through_sql_as_it_does_in_keras(
    trained, server, views, synth_dir
):
    assert trained.result.returncode == 0, trained.result.stderr[-5000:]
    cursor = server.connect().cursor()
    cursor.execute("SELECT name, version, status FROM emotion_models() WHERE name = 'synthetic'")
    assert cursor.fetchall() == [("synthetic", 1, "ok")]
    cursor.execute(
        "SELECT regexp_extract(path, '[^/]+$', 0), "
        "to_json(emotion_scores(mfcc(content), 'synthetic/1')), emotion(content, 'synthetic/1') "
        "FROM synth WHERE path LIKE '%spk3_%' ORDER BY 1"
    )
    served = cursor.fetchall()
    assert len(served) == 16
    model = load_keras_model(read_model_dir(trained.directory, expected_features=DEFAULT_FEATURES))
    for name, scores_json, emotion in served:
        scores = json.loads(scores_json)
        assert list(scores) == list(EMOTIONS) and emotion == max(scores, key=scores.get), name
        y, rate = decode_audio((synth_dir / name).read_bytes())
        local = model.predict(mfcc_features(y, rate)[None], verbose=0)[0]
        # The same model on the same features; only BLAS summation order may differ.
        np.testing.assert_allclose(list(scores.values()), local, atol=2e-3, err_msg=name)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--selection", "best", "--cv-folds", "2"], "needs --selection last"),
        (["--selection", "average", "--cv-folds", "2"], "--selection must be one of best, last"),
        ([], "needs --cv-folds K"),
    ],
)
def test_no_validation_speakers_needs_last_selection_and_cv(
    server, views, tmp_path, extra, message
):
    result = train(
        server,
        tmp_path,
        "--view",
        "synth_train",
        "--validation-speakers",
        "none",
        *extra,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    error_lines = [
        line for line in result.stderr.splitlines() if line.startswith("emoticana: error:")
    ]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-3000:]


@pytest.mark.parametrize(
    "pair, message",
    [
        ("pitch_shift=3", "pitch_shift must be a number of octaves in [0, 1] (0: off)"),
        ("level_shift=50", "level_shift must be a number of dB in [0, 40] (0: off)"),
        ("colour=1", "unknown hyperparameters: ['colour']"),
        ("filters=[8,8]", "filters and kernels must have the same length"),
    ],
)
def test_a_bad_or_unknown_hyperparameter_fails_with_one_clear_line(
    server, views, tmp_path, pair, message
):
    result = train(server, tmp_path, "--view", "synth_train", "--hyperparam", pair, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    error_lines = [
        line for line in result.stderr.splitlines() if line.startswith("emoticana: error:")
    ]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-3000:]


@pytest.mark.parametrize(
    "cv_by, folds, validation, message",
    [
        ("corpus,speaker", 5, [], None),
        ("corpus", 0, [], None),
        ("speaker", 5, [], None),
        ("speaker", 0, None, None),  # no cross-validation: validation speakers give the figures
        ("corpus,speaker", 0, [], "--cv-by corpus,speaker needs --cv-folds K (K >= 2) for its"),
        ("corpus,speaker", 1, None, "--cv-by corpus,speaker needs --cv-folds K (K >= 2) for its"),
        ("corpus", 2, [], "--cv-by corpus makes one fold per corpus: leave out --cv-folds"),
        ("speaker,corpus", 5, [], "--cv-by must be speaker, corpus or both (corpus,speaker)"),
        ("corpus, speaker", 5, [], "--cv-by must be speaker, corpus or both"),
        ("corpus,corpus", 0, [], "--cv-by must be speaker, corpus or both"),
        ("speaker", 0, [], "--validation-speakers none needs --cv-folds K (K >= 2) or --cv-by"),
    ],
)
def test_cross_validation_options_are_checked_before_anything_runs(
    cv_by, folds, validation, message
):
    options = TrainOptions(cv_by=cv_by, validation_speakers=validation)
    if message is None:
        check_options(options, folds)
    else:
        with pytest.raises(ConfigError) as refused:
            check_options(options, folds)
        assert message in str(refused.value)


def test_the_trainer_waits_for_the_chiefs_files_and_reports_its_failure_at_once(tmp_path):
    # After the feed the chief may still train and save; its history file (written whole by a
    # rename) says it is done, and its traceback file says why it is not, without waiting out the
    # timeout.
    (tmp_path / NODE_HISTORY_FILE).write_text("{}", encoding="utf-8")
    wait_for_chief(tmp_path, timeout_s=0)
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / NODE_ERROR_FILE).write_text(
        "Traceback (most recent call last):\n  File ...\n"
        "OSError: [Errno 28] No space left on device\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    with pytest.raises(TrainingError, match=r"failed: OSError: \[Errno 28\] No space left"):
        wait_for_chief(failed, timeout_s=60)
    assert time.monotonic() - started < 30
    with pytest.raises(TrainingError, match="wrote no model within 0.2 s"):
        wait_for_chief(tmp_path / "silent", timeout_s=0.2, poll_s=0.05)
