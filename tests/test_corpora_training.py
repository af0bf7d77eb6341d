"""Training on several corpora from SQL (sql/training/corpora.sql), on generated corpora laid
out as ../shared's: one view per corpus, their union, augmented copies, the partial-label loss
and leave-one-corpus-out figures, end to end through the server and TensorFlowOnSpark."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from server.process import PROJECT_ROOT
from server.sqlscript import read_script
from tests.audiogen import voiced_signal, write_clip
from training.calibration import fit_calibration
from training.calibration import scaled as scaled_probabilities
from training.encoder_head import FUSION_WEIGHT as FUSION_WEIGHT_ENCODER
from training.metrics import expected_calibration_error, figures_by_corpus
from training.voice_head import FUSION_WEIGHT
from udfs.features import DEFAULT_FEATURES
from udfs.inference import model_figure_rows
from udfs.labels import EMOTIONS
from udfs.model_store import ModelStore
from udfs.voice import VOICE_HEAD_FILE, read_voice_head

pytestmark = pytest.mark.slow

#: Generated corpora: (folder, speaker prefix, emotions, language); as in ../shared/corpora.
CORPORA = (
    ("emodb", "emodb", ("angry", "boredom", "disgust", "happy", "neutral", "sad"), "de"),
    ("nemo", "nemo", ("angry", "fearful", "happy", "neutral", "sad", "surprised"), "pl"),
    ("indian_emospeech", "indemo", ("angry", "calm", "fearful", "happy"), "en"),
)


def clip(rng, emotion: str, speaker: int) -> np.ndarray:
    # Each emotion its own pitch (learnable); 'boredom' is not one of the eight.
    index = EMOTIONS.index(emotion) if emotion in EMOTIONS else 3
    return voiced_signal(rng, sample_rate=16000, seconds=0.8, f0=90 + 28 * index + 4 * speaker)


@pytest.fixture(scope="module")
def shared(audio_root) -> Path:
    """RAVDESS-named clips and three labelled corpora, under the server's audio root."""
    root = audio_root / "shared"
    rng = np.random.default_rng(30)
    for actor in (1, 2):
        for number, emotion in enumerate(EMOTIONS, start=1):
            name = f"03-01-{number:02d}-01-01-01-{actor:02d}.flac"
            write_clip(root / "ravdess" / name, clip(rng, emotion, actor), 16000, subtype="PCM_16")
    for folder, prefix, emotions, language in CORPORA:
        rows = []
        for speaker in (1, 2):
            for emotion in emotions:
                # Nested folders, as Indian EmoSpeech has.
                path = f"audio/room{speaker}/{prefix}{speaker}_{emotion}.flac"
                write_clip(
                    root / "corpora" / folder / path,
                    clip(rng, emotion, speaker),
                    16000,
                    subtype="PCM_16",
                )
                rows.append((path, emotion, f"{prefix}_{speaker}", language))
        with open(root / "corpora" / folder / "labels.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("path", "emotion", "speaker", "language"))
            writer.writerows(rows)
    return root


def emoticana(server, *args, timeout=900):
    home = ["--home", str(server.home)] if args[0] == "train" else []
    return subprocess.run(
        [sys.executable, "-m", "server", *args, "--port", str(server.port), *home],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def corpus_views(server, shared):
    result = emoticana(
        server,
        "sql",
        "sql/training/corpora.sql",
        "--hivevar",
        f"corpora_dir={shared / 'corpora'}",
        "--hivevar",
        f"ravdess_dir={shared / 'ravdess'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return server.connect().cursor()


def test_the_script_refuses_to_run_without_its_folders_before_changing_anything(server, shared):
    cursor = server.connect().cursor()
    cursor.execute("CREATE DATABASE IF NOT EXISTS emoticana")
    cursor.execute("CREATE OR REPLACE VIEW emoticana.sentinel AS SELECT 1 AS one")
    cursor.execute("DROP TABLE IF EXISTS emoticana.emodb_clips")
    cursor.execute(
        f"CREATE TABLE emoticana.emodb_clips USING binaryFile OPTIONS (path "
        f"'{shared / 'corpora' / 'emodb' / 'audio'}', recursiveFileLookup 'true')"
    )
    result = emoticana(server, "sql", "sql/training/corpora.sql", timeout=120)
    assert result.returncode != 0
    # emoticana sql checks a script's variables before it connects; beeline and the console
    # meet the script's own first statement (assert_true) instead.
    assert "needs --hivevar corpora_dir=VALUE --hivevar ravdess_dir=VALUE; nothing was run" in (
        result.stderr
    )
    guard = read_script(PROJECT_ROOT / "sql" / "training" / "corpora.sql")[0]
    with pytest.raises(Exception, match="set --hivevar corpora_dir=/abs/path"):
        cursor.execute(guard)
    cursor.execute("SELECT count(*) FROM emoticana.emodb_clips")  # still there
    assert cursor.fetchall()[0][0] == 12


def test_every_corpus_is_a_view_and_the_union_has_them_all(corpus_views):
    corpus_views.execute(
        "SELECT corpus, concat_ws(',', sort_array(collect_set(label))), count(*), "
        "count(DISTINCT speaker), count(DISTINCT language) FROM emotion_train GROUP BY corpus"
    )
    found = {row[0]: row[1:] for row in corpus_views.fetchall()}
    assert found == {
        "ravdess": (",".join(sorted(EMOTIONS)), 16, 2, 1),
        # boredom is none of the eight emotions: left out.
        "emodb": ("angry,disgust,happy,neutral,sad", 10, 2, 1),
        "nemo": ("angry,fearful,happy,neutral,sad,surprised", 12, 2, 1),
        "indemo": ("angry,calm,fearful,happy", 8, 2, 1),
    }
    corpus_views.execute("SELECT DISTINCT speaker FROM emotion_train WHERE corpus = 'indemo'")
    assert sorted(row[0] for row in corpus_views.fetchall()) == ["indemo_1", "indemo_2"]


def test_the_augmented_view_adds_one_degraded_copy_of_every_clip(corpus_views):
    corpus_views.execute(
        "SELECT condition, count(*), count(audio_info(content).sample_rate), "
        "count(mfcc(content)) FROM emotion_train_augmented GROUP BY condition"
    )
    assert {row[0]: row[1:] for row in corpus_views.fetchall()} == {
        "clean": (46, 46, 46),
        "degraded": (46, 46, 46),
    }


#: The corpora of the leave-one-corpus-out run: one fold each (and a TensorFlowOnSpark run each),
#: so two, whose emotions differ from each other and are fewer than the eight.
LOCO_CORPORA = ("emodb", "indemo")
#: Batches small beside these few rows: tf.data reads ahead and drops a few batches' worth of rows
#: at the start of a run, which a batch of the recipe's size would make many passes of the feed.
LOCO_ARGS = ("--epochs", "1", "--batch-size", "8", "--hyperparam", "filters=[8,8,16,16,16,16]")


def test_leave_one_corpus_out_and_speaker_folds_train_on_partial_labels_and_report_each_corpus(
    server, corpus_views, tmp_path
):
    names = ", ".join(f"'{name}'" for name in LOCO_CORPORA)
    corpus_views.execute(
        "CREATE OR REPLACE VIEW loco_train AS "
        f"SELECT * FROM emotion_train_augmented WHERE corpus IN ({names})"
    )
    result = emoticana(
        server,
        "train",
        "--view",
        "loco_train",
        "--cv-by",
        "corpus,speaker",
        "--cv-folds",
        "2",
        "--validation-speakers",
        "none",
        *LOCO_ARGS,
        "--models-dir",
        str(tmp_path / "models"),
        "--name",
        "corpora",
        "--encoder-head",
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    # The network is version 1; --encoder-head published it again, fused, as version 2.
    assert "fused with the speech encoder's head as version 2" in result.stdout
    directory = tmp_path / "models" / "corpora" / "1"
    metrics = json.loads((directory / "metrics.json").read_text())
    cv = metrics["cross_validation"]
    assert cv["by"] == "corpus" and len(cv["folds"]) == 2
    # Each fold's test speakers are one corpus's, and only its clips as recorded are tested.
    assert sorted(fold["n"] for fold in cv["folds"]) == [8, 10]
    assert sorted(tuple(fold["test_speakers"]) for fold in cv["folds"]) == [
        ("emodb_1", "emodb_2"),
        ("indemo_1", "indemo_2"),
    ]
    figures = cv["by_corpus"]["corpora"]
    assert sorted(figures) == ["emodb", "indemo"]
    assert figures["indemo"]["emotions"] == ["calm", "happy", "angry", "fearful"]
    assert sorted(figures["emodb"]["per_class_recall"]) == sorted(
        ["neutral", "happy", "sad", "angry", "disgust"]
    )
    for corpus in figures.values():
        assert 0 <= corpus["unweighted_accuracy"] <= 1
        assert 0 <= corpus["expected_calibration_error"] <= 1
        # Decisions are among the corpus's own emotions.
        confusion = np.array(corpus["confusion"])
        absent = [EMOTIONS.index(name) for name in EMOTIONS if name not in corpus["emotions"]]
        assert confusion[:, absent].sum() == 0
    # Then speaker folds over the whole view: every speaker tested once, by a model that heard
    # the other speaker of its corpus.
    by_speaker = metrics["cross_validation_by_speaker"]
    assert by_speaker["by"] == "speaker" and len(by_speaker["folds"]) == 2
    assert sorted(s for fold in by_speaker["folds"] for s in fold["test_speakers"]) == [
        "emodb_1",
        "emodb_2",
        "indemo_1",
        "indemo_2",
    ]
    assert sum(fold["n"] for fold in by_speaker["folds"]) == 18
    assert sorted(by_speaker["by_corpus"]["corpora"]) == ["emodb", "indemo"]
    with open(directory / "cv_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 36 and {row["corpus"] for row in rows} == set(figures)
    assert sorted(row["cv_by"] for row in rows) == ["corpus"] * 18 + ["speaker"] * 18
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["train_rows"] == 36  # the final model trains on clean and degraded rows
    # Calibrated on the held-out predictions: the saved model ends in the fitted temperature.
    calibration = metrics["calibration"]
    assert manifest["temperature"] == calibration["temperature"] > 0
    assert sorted(calibration["after"]["corpora"]) == sorted(figures)
    # Fitted on the corpora left out; the speaker folds' figures as the final model would give.
    speaker_rows = [row for row in rows if row["cv_by"] == "speaker"]
    scaled = scaled_probabilities(
        np.array([[float(row[e]) for e in EMOTIONS] for row in speaker_rows]),
        calibration["temperature"],
    )
    emodb = [i for i, row in enumerate(speaker_rows) if row["corpus"] == "emodb"]
    labels = np.array([EMOTIONS.index(speaker_rows[i]["label"]) for i in emodb])
    after = by_speaker["by_corpus_after_temperature"]["corpora"]["emodb"]
    assert after["expected_calibration_error"] == pytest.approx(
        expected_calibration_error(
            scaled[emodb].max(axis=1), scaled[emodb].argmax(axis=1) == labels
        ),
        abs=1e-4,
    )
    assert after["confusion"] == by_speaker["by_corpus"]["corpora"]["emodb"]["confusion"]
    # emotion_model_figures() reads them: one row per corpus of each cross-validation.
    store = ModelStore((str(tmp_path / "models"),), DEFAULT_FEATURES)
    table = {(row[2], row[3]): row for row in model_figure_rows(store) if row[:2] == ("corpora", 1)}
    assert sorted(table) == sorted(
        (f"{evaluation}{grouped}", corpus)
        for evaluation in ("corpus left out", "unseen speakers")
        for grouped in ("", ", against speaker", ", against speaker and voice")
        for corpus in ("emodb", "indemo")
    )
    # Grouped answers come without a confidence, so without calibration figures.
    assert table["unseen speakers, against speaker and voice", "emodb"][10:] == (None,) * 3
    # Calibration errors, which the temperature changes (the decisions it does not).
    assert table["unseen speakers", "emodb"][10] == after["expected_calibration_error"]
    # With the corpora left out, each corpus's calibration with a temperature fitted on the other
    # corpus alone: what the answers' confidence is worth on a corpus the temperature never saw.
    corpus_rows = [row for row in rows if row["cv_by"] == "corpus"]
    emodb_rows = [row for row in corpus_rows if row["corpus"] == "emodb"]
    assert calibration["held_out_temperatures"]["indemo"] == pytest.approx(
        fit_calibration(
            np.array([[float(row[e]) for e in EMOTIONS] for row in emodb_rows]),
            np.array([EMOTIONS.index(row["label"]) for row in emodb_rows]),
        )["temperature"],
        rel=1e-3,
    )
    left_out = calibration["held_out"]["corpora"]["indemo"]
    assert left_out["confusion"] == figures["indemo"]["confusion"]  # the same decisions
    assert table["corpus left out", "indemo"][4:6] == (["calm", "happy", "angry", "fearful"], 8)
    assert table["corpus left out", "indemo"][10] == left_out["expected_calibration_error"]
    # The temperature is fitted on the corpora left out alone, each corpus a group.
    assert calibration["temperature"] == pytest.approx(
        fit_calibration(
            np.array([[float(row[e]) for e in EMOTIONS] for row in corpus_rows]),
            np.array([EMOTIONS.index(row["label"]) for row in corpus_rows]),
            np.array([row["corpus"] for row in corpus_rows]),
        )["temperature"],
        rel=1e-3,
    )
    # The network alone has no encoder states: no distance, no slope.
    assert calibration["slope"] == 0 and {row["distance"] for row in rows} == {""}
    from udfs.model_format import load_keras_model_file

    model = load_keras_model_file(directory / "model.keras")
    assert model.layers[-1].name == "calibrate"
    assert model.layers[-1].temperature == pytest.approx(calibration["temperature"])
    # The voice head beside the network, its weight against scores flattened by the temperature.
    assert manifest["voice_head"] == VOICE_HEAD_FILE
    head = read_voice_head(directory, "corpora/1")
    assert head.fusion_weight == pytest.approx(FUSION_WEIGHT / calibration["temperature"])
    assert np.abs(head.weights).max() > 0
    # Each cross-validation's answers against each speaker's baseline, recomputed from the
    # held-out predictions: the scores with the temperature over their speaker's mean scores,
    # decided among the corpus's own emotions.
    # A corpus left out is judged with the temperature fitted without it.
    for key, kind in (("cross_validation", "corpus"), ("cross_validation_by_speaker", "speaker")):
        mine = [row for row in rows if row["cv_by"] == kind]
        p = np.concatenate(
            [
                scaled_probabilities(
                    np.array([[float(row[e]) for e in EMOTIONS]]),
                    calibration["held_out_temperatures"][row["corpus"]]
                    if kind == "corpus"
                    else calibration["temperature"],
                )
                for row in mine
            ]
        )
        speakers = np.array([row["speaker"] for row in mine])
        ratio = np.log(p)
        for speaker in set(speakers):
            ratio[speakers == speaker] -= np.log(p[speakers == speaker].mean(axis=0))
        against = metrics[key]["by_corpus_against_speaker"]["corpora"]
        for corpus, figures in against.items():
            allowed = np.array([name in figures["emotions"] for name in EMOTIONS])
            confusion = np.zeros((8, 8), dtype=int)
            for row, r in zip(mine, ratio):
                if row["corpus"] == corpus:
                    decided = int(np.argmax(np.where(allowed, r, -np.inf)))
                    confusion[EMOTIONS.index(row["label"]), decided] += 1
            assert figures["confusion"] == confusion.tolist(), (key, corpus)
            assert "expected_calibration_error" not in figures and figures["undecided"] == 0
        voiced = metrics[key]["by_corpus_against_speaker_and_voice"]["corpora"]
        assert sorted(voiced) == sorted(against) == ["emodb", "indemo"]
        assert all(np.sum(f["confusion"]) == against[c]["n"] for c, f in voiced.items())
    # The same network published again with a voice head trained anew on the same view (how a
    # model from before voice heads gets one): the next version, the same network and figures.
    again = add_head(server, "--voice-head-for", "loco_train", "corpora/1", tmp_path / "models")
    assert again.returncode == 0, (again.stdout[-3000:], again.stderr[-5000:])
    second = tmp_path / "models" / "corpora" / "3"
    assert (second / "model.keras").read_bytes() == (directory / "model.keras").read_bytes()
    assert (second / VOICE_HEAD_FILE).is_file()
    republished = json.loads((second / "manifest.json").read_text())
    assert (republished["version"], republished["network_of"]) == (3, "corpora/1")
    assert republished["temperature"] == manifest["temperature"]
    figures_again = json.loads((second / "metrics.json").read_text())
    for key in ("cross_validation", "cross_validation_by_speaker"):
        assert (
            figures_again[key]["by_corpus_against_speaker"]
            == metrics[key]["by_corpus_against_speaker"]
        )
    # The network fused with a head on the pretrained speech encoder's states (version 2, from
    # --encoder-head): figures of the fusion on the network's very folds, the temperature fitted
    # again.
    third = tmp_path / "models" / "corpora" / "2"
    fused_manifest = json.loads((third / "manifest.json").read_text())
    fused_metrics = json.loads((third / "metrics.json").read_text())
    assert (fused_manifest["version"], fused_manifest["network_of"]) == (2, "corpora/1")
    assert fused_manifest["speech_encoder"]["fusion_weight"] == FUSION_WEIGHT_ENCODER
    assert fused_manifest["temperature"] == fused_metrics["calibration"]["temperature"] > 0
    assert fused_manifest["distance_slope"] == fused_metrics["calibration"]["slope"] >= 0
    with open(third / "cv_predictions.csv") as handle:
        fused_rows = list(csv.DictReader(handle))
    # Each fused row's distance from its fold's training states, over the reference.
    fused_distances = np.array([float(r["distance"]) for r in fused_rows])
    assert np.isfinite(fused_distances).all() and fused_distances.std() > 0
    assert sorted((r["cv_by"], r["clip_sha256"]) for r in fused_rows) == sorted(
        (r["cv_by"], r["clip_sha256"]) for r in rows
    )
    network_p = {(r["cv_by"], r["clip_sha256"]): [float(r[e]) for e in EMOTIONS] for r in rows}
    assert any(
        not np.allclose([float(r[e]) for e in EMOTIONS], network_p[r["cv_by"], r["clip_sha256"]])
        for r in fused_rows
    )
    for key, kind in (("cross_validation", "corpus"), ("cross_validation_by_speaker", "speaker")):
        summary = fused_metrics[key]
        assert summary["network_alone"] == metrics[key]["by_corpus"]
        mine = [
            {**r, "probabilities": [float(r[e]) for e in EMOTIONS]}
            for r in fused_rows
            if r["cv_by"] == kind
        ]
        # The figures are of the fused held-out rows written beside them (to six decimals).
        recomputed = figures_by_corpus(
            mine, {c: f["emotions"] for c, f in cv["by_corpus"]["corpora"].items()}
        )["corpora"]
        for corpus, figures_there in summary["by_corpus"]["corpora"].items():
            assert figures_there["confusion"] == recomputed[corpus]["confusion"], (key, corpus)
            assert figures_there["unweighted_accuracy"] == pytest.approx(
                recomputed[corpus]["unweighted_accuracy"]
            )
        assert "by_corpus_against_speaker_and_voice" in summary
    assert (third / VOICE_HEAD_FILE).is_file()
    model = load_keras_model_file(third / "model.keras")
    assert model.layers[-1].name == "calibrate"
    assert model.layers[-1].temperature == pytest.approx(fused_manifest["temperature"])
    assert model.layers[-1].slope == pytest.approx(fused_manifest["distance_slope"])
    reference = fused_metrics["calibration"]["distance_reference"]
    assert model.layers[-1].log_reference == pytest.approx(reference["log_distance"])
    assert 0 < reference["quantile"] < 1
    # The encoder's weights travel in the model file, frozen as the checkpoint has them.
    from udfs.speech_encoder import encoder_weights

    lstm = model.get_layer("speech_encoder").get_layer("encoder_lstm2")
    np.testing.assert_array_equal(lstm.get_weights()[0], encoder_weights()["lstm.weight_ih_l1"].T)
    answers = model.predict(np.random.default_rng(0).normal(size=(3, *DEFAULT_FEATURES.shape)))
    np.testing.assert_allclose(np.asarray(answers).sum(axis=1), 1.0, rtol=1e-5)
    # A published network is fused later the same way (--encoder-head-for): the next version;
    # here with the temporal head beside the pooled one.
    fused = add_head(
        server,
        "--encoder-head-for",
        "loco_train",
        "corpora/1",
        tmp_path / "models",
        "--temporal-head",
    )
    assert fused.returncode == 0, (fused.stdout[-3000:], fused.stderr[-5000:])
    fourth = tmp_path / "models" / "corpora" / "4"
    later = json.loads((fourth / "manifest.json").read_text())
    assert (later["version"], later["network_of"]) == (4, "corpora/1")
    assert fused_manifest["speech_encoder"]["temporal_head"] is False
    assert later["speech_encoder"] == {**fused_manifest["speech_encoder"], "temporal_head": True}
    with_temporal = load_keras_model_file(fourth / "model.keras")
    assert with_temporal.get_layer("fuse_temporal").weight == pytest.approx(
        FUSION_WEIGHT_ENCODER / 2
    )
    answers = with_temporal.predict(
        np.random.default_rng(1).normal(size=(3, *DEFAULT_FEATURES.shape))
    )
    np.testing.assert_allclose(np.asarray(answers).sum(axis=1), 1.0, rtol=1e-5)
    with open(fourth / "cv_predictions.csv") as handle:
        assert sorted((r["cv_by"], r["clip_sha256"]) for r in csv.DictReader(handle)) == sorted(
            (r["cv_by"], r["clip_sha256"]) for r in fused_rows
        )
    # A fused model is not fused again: its network's own version is named instead.
    refused = add_head(server, "--encoder-head-for", "loco_train", "corpora/2", tmp_path / "models")
    assert refused.returncode != 0
    assert "corpora/2 already answers with the speech encoder" in refused.stderr
    assert "corpora/1" in refused.stderr.strip().splitlines()[-1]
    # A view of other clips is refused in one line, and nothing is published.
    error, stderr = refused_voice_head(server, "emodb_corpus", "corpora/1", tmp_path / "models")
    assert "corpora/1 was trained on other clips than view 'emodb_corpus'" in error
    # So is a model without cross-validation predictions to measure its head on.
    shutil.copytree(directory, tmp_path / "models" / "corpora" / "7")
    (tmp_path / "models" / "corpora" / "7" / "cv_predictions.csv").unlink()
    error, stderr = refused_voice_head(server, "loco_train", "corpora/7", tmp_path / "models")
    assert "corpora/7 has no cross-validation predictions (cv_predictions.csv)" in error
    # Refused before the trainer's own Spark application starts (its JVM announces itself).
    assert "jdk.incubator" not in stderr
    assert sorted(p.name for p in (tmp_path / "models" / "corpora").iterdir()) == [
        "1",
        "2",
        "3",
        "4",
        "7",
    ]


def add_head(server, flag: str, view: str, reference: str, models_dir: Path, *extra: str):
    """``emoticana train --voice-head-for`` or ``--encoder-head-for`` (``flag``) on ``view``."""
    return emoticana(
        server, "train", "--view", view, flag, reference, "--models-dir", str(models_dir), *extra
    )


def refused_voice_head(server, view: str, reference: str, models_dir: Path) -> tuple[str, str]:
    """``emoticana train --voice-head-for`` that must fail: its one error line, and stderr."""
    refused = add_head(server, "--voice-head-for", view, reference, models_dir)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("emoticana: error:")]
    assert refused.returncode != 0 and len(errors) == 1, refused.stderr[-3000:]
    return errors[0], refused.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--cv-by", "corpus", "--cv-folds", "2"], "--cv-by corpus makes one fold per corpus"),
        (["--cv-by", "accent"], "--cv-by must be speaker, corpus or both (corpus,speaker)"),
        (["--cv-by", "corpus,corpus"], "--cv-by must be speaker, corpus or both"),
        (["--cv-by", "corpus,speaker"], "needs --cv-folds K (K >= 2) for its speaker folds"),
        (["--encoder-head"], "--encoder-head needs cross-validation"),
        (["--temporal-head", "--cv-folds", "2"], "--temporal-head goes beside the encoder head"),
        (
            ["--encoder-head", "--cv-folds", "2", "--encoder-head-for", "emoticana/1"],
            "--encoder-head fuses the network this run trains",
        ),
    ],
)
def test_bad_cross_validation_options_fail_with_one_line(server, corpus_views, extra, message):
    result = emoticana(server, "train", "--view", "emotion_train", *extra, timeout=300)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("emoticana: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]


def test_leave_one_corpus_out_needs_two_corpora(server, corpus_views, tmp_path):
    result = emoticana(
        server,
        "train",
        "--view",
        "nemo_corpus",
        "--cv-by",
        "corpus",
        "--validation-speakers",
        "none",
        "--models-dir",
        str(tmp_path),
        timeout=600,
    )
    assert result.returncode == 2
    assert "--cv-by corpus needs a view with a corpus column naming at least two corpora" in (
        result.stderr
    )
