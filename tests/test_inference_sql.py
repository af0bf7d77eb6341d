"""Classification in SQL through the real server: functions, views, model registry."""

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.audiogen import write_clip
from tests.modelgen import other_features, write_biased_model
from udfs.features import DEFAULT_FEATURES
from udfs.labels import EMOTIONS, MERGED_CLASSES
from udfs.model_store import DEFAULT_MODEL
from udfs.voice import VOICE_HEAD_FILE, VoiceHead, profile_length, profiles

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_ROOT / "sql" / "examples"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(server):
    """Extra versions in the server's own model directory; the shipped model stays active after."""
    models_dir = server.home / "models"
    write_biased_model(models_dir, "biased", 1, favour="angry")
    write_biased_model(models_dir, "biased", 2, favour="sad")
    write_biased_model(models_dir, "mismatched", 1, favour="calm", features=other_features())
    # The shipped network with a voice head of random weights.
    name, version = DEFAULT_MODEL.split("/")
    voiced = models_dir / "voiced" / "1"
    shutil.copytree(PROJECT_ROOT / "models" / name / version, voiced)
    rng = np.random.default_rng(5)
    length = profile_length()
    VoiceHead(
        mean=rng.normal(size=length),
        scale=rng.uniform(0.5, 2, size=length),
        weights=rng.normal(size=(length, len(EMOTIONS))),
        bias=rng.normal(size=len(EMOTIONS)),
        balancing=rng.uniform(0.5, 2, size=len(EMOTIONS)),
        fusion_weight=0.7,
        features=DEFAULT_FEATURES,
    ).write(voiced)
    yield models_dir
    cursor = server.connect().cursor()
    cursor.execute(f"SELECT activate_model('{DEFAULT_MODEL}')")


@pytest.fixture(scope="module")
def clips(server, audio_root):
    cursor = server.connect().cursor()
    cursor.execute("DROP TABLE IF EXISTS clips")
    cursor.execute(
        "CREATE TABLE clips USING binaryFile "
        f"OPTIONS (path '{audio_root / 'ravdess'}', pathGlobFilter '*.wav')"
    )
    return "clips"


def rows(cursor, sql):
    cursor.execute(sql)
    return cursor.fetchall()


def test_scores_are_probabilities_for_every_clip(cursor, clips):
    result = rows(
        cursor, "SELECT to_json(emotion_scores(mfcc(content))), emotion(content) FROM clips"
    )
    assert len(result) == 3
    for scores_json, label in result:
        scores = json.loads(scores_json)
        assert list(scores) == list(EMOTIONS)
        values = np.array(list(scores.values()))
        assert np.all(values >= 0) and abs(values.sum() - 1) < 1e-4
        assert label == max(scores, key=scores.get)


def test_sounds_that_are_not_speech_get_no_confident_emotion(cursor, audio_root):
    # Users filter on confidence (emotion_bi.confidence > 0.9): noise, tones and music are
    # further from any voice the shipped model heard than an unheard corpus is, and its
    # calibration softens audio whose encoder states lie that far to near chance (1/8),
    # whatever emotion it names; without that the encoder head alone is all but certain on
    # tones and sweeps.
    rng = np.random.default_rng(11)
    rate = 16000
    t = np.arange(3 * rate) / rate
    brown = np.cumsum(rng.normal(size=t.size))
    sounds = {
        "white_noise": rng.normal(size=t.size),
        "brown_noise": brown - np.convolve(brown, np.ones(400) / 400, "same"),
        "tone": np.sin(2 * np.pi * 440 * t),
        "chord": sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)),
        "sweep": np.sin(2 * np.pi * (100 + 1000 * t) * t),
        "buzz": np.sign(np.sin(2 * np.pi * 150 * t)),
    }
    directory = audio_root / "not_speech"
    for name, samples in sounds.items():
        write_clip(
            directory / f"{name}.wav", 0.5 * samples / np.abs(samples).max(), rate, subtype="PCM_16"
        )
    cursor.execute("DROP TABLE IF EXISTS not_speech")
    cursor.execute(f"CREATE TABLE not_speech USING binaryFile OPTIONS (path '{directory}')")
    top = rows(
        cursor,
        "SELECT regexp_extract(path, '([a-z_]+)[.]wav$', 1), greatest(s.neutral, s.calm, "
        "s.happy, s.sad, s.angry, s.fearful, s.disgust, s.surprised) FROM (SELECT path, "
        f"emotion_scores(mfcc(content), '{DEFAULT_MODEL}') AS s FROM not_speech)",
    )
    assert sorted(name for name, _ in top) == sorted(sounds)
    assert all(confidence < 0.3 for _, confidence in top), top


def test_null_and_bad_rows(cursor, audio_root):
    result = rows(
        cursor,
        (
            "SELECT emotion_scores(CAST(NULL AS ARRAY<FLOAT>)) IS NULL, "
            "emotion_scores(array(1.0f, 2.0f)) IS NULL, "
            # Finite, but far beyond any features: the network overflows; NULL, not NaN.
            "emotion_scores(array_repeat(CAST(1e6 AS FLOAT), 12943)) IS NULL, "
            "emotion(CAST(NULL AS STRING)) IS NULL, "
            f"emotion('{audio_root}/bad/random.wav') IS NULL, "
            f"emotion('{audio_root}/missing.wav') IS NULL, "
            f"emotion('{audio_root}/variants/clip_16k.flac') IS NULL"
        ),
    )
    assert result == [(True, True, True, True, True, True, False)]


def test_path_and_bytes_give_the_same_emotion(cursor, clips):
    result = rows(cursor, "SELECT emotion(path) = emotion(content) FROM clips")
    assert result == [(True,)] * 3


def test_model_list_switch_and_explicit_version(server, models, clips):
    cursor = server.connect().cursor()
    listed = {
        (name, version): (active, status)
        for name, version, active, status in rows(
            cursor, "SELECT name, version, active, status FROM emotion_models()"
        )
    }
    default_name, default_version = DEFAULT_MODEL.split("/")
    assert listed[(default_name, int(default_version))] == (True, "ok")
    assert listed[("biased", 1)] == (False, "ok")
    assert "expects other features" in listed[("mismatched", 1)][1]

    assert rows(cursor, "SELECT activate_model('biased/1')") == [("biased/1",)]
    other_session = (
        server.connect().cursor()
    )  # the switch is for every session, from the next query on
    assert {label for (label,) in rows(other_session, "SELECT emotion(content) FROM clips")} == {
        "angry"
    }
    assert rows(cursor, "SELECT activate_model('biased')") == [("biased/2",)]  # newest version
    assert {label for (label,) in rows(other_session, "SELECT emotion(content) FROM clips")} == {
        "sad"
    }
    assert {
        label for (label,) in rows(other_session, "SELECT emotion(content, 'biased/1') FROM clips")
    } == {"angry"}
    assert rows(cursor, "SELECT name, version FROM emotion_models() WHERE active") == [
        ("biased", 2)
    ]
    rows(cursor, f"SELECT activate_model('{DEFAULT_MODEL}')")


def test_emotion_relative_judges_each_clip_against_its_groups_baseline(cursor, clips):
    found = rows(
        cursor,
        "SELECT path, to_json(s), to_json(emotion_baseline(s) OVER ()), "
        "emotion_relative(s, emotion_baseline(s) OVER ()) FROM ("
        "SELECT path, emotion_scores(content) AS s FROM clips "
        "UNION ALL SELECT 'no audio', emotion_scores(CAST(NULL AS BINARY)))",
    )
    assert len(found) == 4
    clips_found = [row for row in found if row[0] != "no audio"]
    scores = np.array([[json.loads(row[1])[name] for name in EMOTIONS] for row in clips_found])
    baseline = scores.mean(axis=0)
    [(_, no_scores, its_baseline, no_answer)] = [row for row in found if row[0] == "no audio"]
    # A NULL row is answered NULL and is in no baseline (the group's is the three clips').
    assert no_scores is None and no_answer is None
    assert json.loads(its_baseline) == pytest.approx(dict(zip(EMOTIONS, baseline)))
    for (_, _, group_baseline, emotion), clip_scores in zip(clips_found, scores):
        assert json.loads(group_baseline) == pytest.approx(dict(zip(EMOTIONS, baseline)))
        assert emotion == EMOTIONS[int(np.argmax(clip_scores / baseline))]
    # Two groups, two baselines: the first clip alone (nothing stands out), the other two.
    first = clips_found[0][0]
    by_group = rows(
        cursor,
        "SELECT path, emotion_relative(s, emotion_baseline(s) OVER (PARTITION BY "
        f"path = '{first}')) FROM (SELECT path, emotion_scores(content) AS s FROM clips)",
    )
    pair = scores[1:].mean(axis=0)
    assert sorted(by_group) == sorted(
        [(first, None)]
        + [
            (row[0], EMOTIONS[int(np.argmax(s / pair))])
            for row, s in zip(clips_found[1:], scores[1:])
        ]
    )
    grouped = dict(
        rows(
            cursor,
            f"SELECT path = '{first}', to_json(emotion_baseline(emotion_scores(content))) "
            f"FROM clips GROUP BY path = '{first}'",
        )
    )
    assert json.loads(grouped[True]) == pytest.approx(dict(zip(EMOTIONS, scores[0])))
    assert json.loads(grouped[False]) == pytest.approx(dict(zip(EMOTIONS, pair)))
    # Only NULL rows: no baseline.
    assert (
        rows(
            cursor,
            "SELECT emotion_baseline(emotion_scores(CAST(NULL AS BINARY))) FROM clips "
            "GROUP BY path",
        )
        == [(None,)] * 3
    )
    # As an aggregate: the same baseline per group.
    [(grouped,)] = rows(
        cursor, "SELECT to_json(emotion_baseline(emotion_scores(content))) FROM clips"
    )
    assert json.loads(grouped) == pytest.approx(dict(zip(EMOTIONS, baseline)))
    # Against a baseline that favours one emotion, another one stands out.
    favoured = int(np.argmax(scores[0]))
    tilted = ", ".join(
        f"'{name}', {10.0 if k == favoured else 0.01}D" for k, name in enumerate(EMOTIONS)
    )
    [(against,)] = rows(
        cursor,
        "SELECT emotion_relative(emotion_scores(content), named_struct("
        f"{tilted})) FROM clips WHERE path = '{clips_found[0][0]}'",
    )
    assert (
        against
        == EMOTIONS[int(np.argmax(scores[0] / np.where(np.arange(8) == favoured, 10, 0.01)))]
    )
    assert against != EMOTIONS[favoured]
    # A clip that is its own group's baseline: nothing stands out.
    [(alone,)] = rows(
        cursor,
        "SELECT emotion_relative(s, emotion_baseline(s) OVER (PARTITION BY path)) FROM ("
        f"SELECT path, emotion_scores(content) AS s FROM clips WHERE path = '{clips_found[0][0]}')",
    )
    assert alone is None


def test_voice_profiles_and_their_baseline_are_the_features_statistics(cursor, clips):
    found = rows(
        cursor,
        "SELECT path, mfcc(content), voice_profile(content), voice_profile(mfcc(content)), "
        "to_json(voice_baseline(voice_profile(content)) OVER ()) FROM clips "
        "UNION ALL SELECT 'no audio', NULL, voice_profile(CAST(NULL AS BINARY)), "
        "voice_profile(array(1.0F, 2.0F)), NULL",
    )
    assert len(found) == 4
    [no_audio] = [row for row in found if row[0] == "no audio"]
    assert no_audio[2:4] == (None, None)  # NULL audio, and an array that is no mfcc value
    # Arrays arrive as JSON text over HiveServer2.
    clips_found = [
        (row[0], *(json.loads(value) for value in row[1:4]), row[4])
        for row in found
        if row[0] != "no audio"
    ]
    x = np.array([row[1] for row in clips_found], dtype=np.float32)
    expected = profiles(x.reshape(len(x), *DEFAULT_FEATURES.shape))
    assert expected.shape == (3, profile_length())
    for (_, _, of_audio, of_mfcc, _), mine in zip(clips_found, expected):
        np.testing.assert_allclose(of_audio, mine, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(of_mfcc, mine, rtol=1e-5, atol=1e-5)
    # Different clips sound different: the statistics are not a constant.
    assert np.abs(expected[0] - expected[1]).max() > 0.1
    baseline = json.loads(clips_found[0][4])
    assert baseline["clips"] == 3  # the NULL row is left out
    np.testing.assert_allclose(baseline["mean"], expected.mean(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(baseline["spread"], expected.std(axis=0), rtol=1e-4, atol=1e-4)
    [(none,)] = rows(
        cursor, "SELECT voice_baseline(voice_profile(CAST(NULL AS BINARY))) FROM clips LIMIT 1"
    )
    assert none is None


def test_emotion_relative_with_voice_profiles_adds_the_models_voice_head(cursor, clips, models):
    query = (
        "SELECT path, to_json(s), to_json(emotion_baseline(s) OVER ()), v, "
        "to_json(voice_baseline(v) OVER ()), "
        "emotion_relative(s, emotion_baseline(s) OVER (), v, voice_baseline(v) OVER (), "
        "'voiced/1'), emotion_relative(s, emotion_baseline(s) OVER ()) FROM ("
        "SELECT path, emotion_scores(content, 'voiced/1') AS s, voice_profile(content) AS v "
        "FROM clips)"
    )
    found = rows(cursor, query)
    assert len(found) == 3
    head = json.loads((models / "voiced" / "1" / VOICE_HEAD_FILE).read_text())
    differs = 0
    for _, s, b, v, vb, fused, plain in found:
        scores = np.array(list(json.loads(s).values()))
        base = np.array(list(json.loads(b).values()))
        voice = json.loads(vb)
        z = (np.array(json.loads(v)) - voice["mean"]) / (np.array(voice["spread"]) + 1e-6)
        logits = (z - head["mean"]) / (np.array(head["scale"]) + 1e-6) @ np.array(
            head["weights"]
        ) + head["bias"]
        p = np.exp(logits - logits.max()) * head["balancing"]
        p /= p.sum()
        both = np.log(scores / base) + head["fusion_weight"] * np.log(p)
        assert fused == EMOTIONS[int(np.argmax(both))]
        assert plain == EMOTIONS[int(np.argmax(scores / base))]
        differs += fused != plain
    # The random head is strong enough to change an answer, so the fusion is not a no-op.
    assert differs >= 1
    # The active model's own head (the shipped model has one) when none is named.
    shipped = rows(
        cursor,
        "SELECT emotion_relative(s, emotion_baseline(s) OVER (), v, voice_baseline(v) OVER ()) "
        "FROM (SELECT emotion_scores(content) AS s, voice_profile(content) AS v FROM clips)",
    )
    assert len(shipped) == 3 and all(answer in EMOTIONS for (answer,) in shipped)
    # A clip that is its own group: nothing stands out, voice or not.
    [(alone,)] = rows(
        cursor,
        "SELECT emotion_relative(s, emotion_baseline(s) OVER (PARTITION BY path), v, "
        "voice_baseline(v) OVER (PARTITION BY path), 'voiced/1') FROM (SELECT path, "
        "emotion_scores(content) AS s, voice_profile(content) AS v FROM clips LIMIT 1)",
    )
    assert alone is None


@pytest.mark.parametrize(
    "call, message",
    [
        (
            "emotion_relative(s, emotion_baseline(s) OVER (), v, voice_baseline(v) OVER (), "
            "'biased/1')",
            "ModelError: model biased/1 has no voice head",
        ),
        (
            "emotion_relative(s, emotion_baseline(s) OVER (), v)",
            "emoticana: emotion_relative(scores, baseline [, profile, voice_baseline [, model]]) "
            "takes 2, 4 or 5 arguments, not 3",
        ),
        (
            "emotion_relative(s, emotion_baseline(s) OVER (), v, s)",
            "ArgumentError: emotion_relative's fourth argument must be voice_baseline(profile)",
        ),
        (
            "emotion_relative(s, emotion_baseline(s) OVER (), s, voice_baseline(v) OVER ())",
            "ArgumentError: emotion_relative's third argument (profile) must be voice_profile(",
        ),
        ("voice_baseline(s) OVER ()", "ArgumentError: voice_baseline's argument must be"),
        (
            "emotion_relative(s, emotion_baseline(s) OVER (), v, "
            "named_struct('mean', 1.0D, 'spread', 2.0D))",
            "ArgumentError: emotion_relative's fourth argument must be voice_baseline(profile), "
            "whose mean is array<double>",
        ),
        (
            "emotion_relative(s, emotion_baseline(s) OVER (), v, voice_baseline(v) OVER (), "
            "'emoticana', 'extra')",
            "takes 2, 4 or 5 arguments, not 6",
        ),
    ],
)
def test_emotion_relative_with_voice_refuses_in_one_line(cursor, clips, models, call, message):
    with pytest.raises(Exception) as refused:
        rows(
            cursor,
            f"SELECT {call} FROM (SELECT emotion_scores(content) AS s, "
            "voice_profile(content) AS v FROM clips)",
        )
    text = str(refused.value)
    assert message in text and "Traceback" not in text


@pytest.mark.parametrize(
    "statement, message",
    [
        ("SELECT emotion()", "emoticana: emotion(audio [, model]) takes 1 or 2 arguments, not 0"),
        ("SELECT mfcc('a.wav', 'b.wav')", "emoticana: mfcc(audio) takes 1 argument, not 2"),
        (
            "SELECT * FROM emotion_models(1)",
            "emoticana: emotion_models() takes 0 arguments, not 1",
        ),
    ],
)
def test_a_call_with_a_wrong_number_of_arguments_fails_in_one_line(cursor, statement, message):
    """Spark counts no arguments for a Python function: the worker failed with a traceback."""
    with pytest.raises(Exception) as refused:
        rows(cursor, statement)
    status = refused.value.args[0].status
    assert status.errorMessage.startswith(message) and not status.infoMessages


@pytest.mark.parametrize(
    "call, message",
    [
        (
            "emotion_relative(named_struct('angry', 1.0D), emotion_scores(content))",
            "emotion_relative's first argument (scores) must be emotion_scores(",
        ),
        (
            "emotion_relative(emotion_scores(content), 0.5D)",
            "emotion_relative's second argument (baseline) must be emotion_scores(",
        ),
        (
            # Every emotion's field, but text.
            "emotion_baseline(named_struct("
            + ", ".join(f"'{name}', 'high'" for name in EMOTIONS)
            + "))",
            "emotion_baseline's argument must be emotion_scores(",
        ),
    ],
)
def test_emotion_relative_refuses_what_is_not_emotion_scores_in_one_line(
    cursor, clips, call, message
):
    with pytest.raises(Exception) as refused:
        rows(cursor, f"SELECT {call} FROM clips")
    text = str(refused.value)
    assert f"ArgumentError: {message}" in text and "Traceback" not in text


def test_model_figures_are_the_shipped_models_held_out_figures_per_corpus(cursor, models):
    name, version = DEFAULT_MODEL.split("/")
    metrics = json.loads((PROJECT_ROOT / "models" / name / version / "metrics.json").read_text())
    found = rows(
        cursor,
        "SELECT evaluation, corpus, clips, unweighted_accuracy, per_class_recall, "
        "confusion[0][0], calibration_error FROM emotion_model_figures() "
        f"WHERE name = '{name}' AND version = {version}",
    )
    # The answers as the model gives them, after its temperature: corpora left out (each with a
    # temperature fitted on the other corpora) and speakers left out; then both judged against
    # each speaker's baseline, without and with the voice head (no calibration: no confidence).
    expected = {
        ("corpus left out", corpus): figures
        for corpus, figures in metrics["calibration"]["held_out"]["corpora"].items()
    }
    after = metrics["cross_validation_by_speaker"]["by_corpus_after_temperature"]
    expected.update(
        {("unseen speakers", corpus): figures for corpus, figures in after["corpora"].items()}
    )
    for key, grouped in (
        ("by_corpus_against_speaker", ", against speaker"),
        ("by_corpus_against_speaker_and_voice", ", against speaker and voice"),
    ):
        for cv, evaluation in (
            ("cross_validation", "corpus left out"),
            ("cross_validation_by_speaker", "unseen speakers"),
        ):
            expected.update(
                {
                    (evaluation + grouped, corpus): figures
                    for corpus, figures in metrics[cv][key]["corpora"].items()
                }
            )
    assert len(expected) == 24
    assert sorted((row[0], row[1]) for row in found) == sorted(expected)
    for evaluation, corpus, clips, ua, recall, neutral_as_neutral, ece in found:
        figures = expected[evaluation, corpus]
        calibration = figures.get("expected_calibration_error")
        assert (calibration is None) == evaluation.endswith("voice") | evaluation.endswith(
            "speaker"
        )
        assert (clips, ua, ece) == (
            figures["n"],
            pytest.approx(figures["unweighted_accuracy"]),
            None if calibration is None else pytest.approx(calibration),
        )
        assert json.loads(recall) == pytest.approx(figures["per_class_recall"])  # map as JSON
        assert neutral_as_neutral == figures["confusion"][0][0]
    # Test models without cross-validation have no figures, and break nothing.
    assert rows(cursor, "SELECT count(*) FROM emotion_model_figures() WHERE name = 'biased'") == [
        (0,)
    ]


def corpus_figures_of(ua: float, ece: float) -> dict:
    """A ``by_corpus`` entry of metrics.json for one corpus, ``c1`` (angry and sad)."""
    return {
        "corpora": {
            "c1": {
                "n": 10,
                "emotions": ["sad", "angry"],
                "unweighted_accuracy": ua,
                "weighted_accuracy": ua,
                "per_class_recall": {"sad": ua, "angry": ua},
                "confusion": np.eye(8, dtype=int).tolist(),
                "expected_calibration_error": ece,
                "confident_share": 0.0,
                "confident_accuracy": None,
            }
        }
    }


def test_model_figures_show_each_cross_validation_and_skip_what_cannot_be_read(cursor, models):
    for version in (1, 2, 3, 4, 5, 6):
        write_biased_model(models, "figures", version, favour="angry")
    directory = models / "figures"
    (directory / "1" / "metrics.json").write_text(
        json.dumps(
            {
                "calibration": None,
                "cross_validation": {
                    "by": "corpus",
                    "by_corpus": corpus_figures_of(0.4, 0.30),
                    "by_corpus_after_temperature": corpus_figures_of(0.4, 0.05),
                },
                "cross_validation_by_speaker": {
                    "by": "speaker",
                    "by_corpus": corpus_figures_of(0.6, 0.20),
                    "by_corpus_after_temperature": corpus_figures_of(0.6, 0.07),
                },
            }
        )
    )
    (directory / "2" / "metrics.json").write_text("[1, 2]")
    (directory / "3" / "metrics.json").write_text(
        json.dumps(
            {"cross_validation": {"by": "speaker", "by_corpus": corpus_figures_of(0.5, 0.1)}}
        )
    )
    (directory / "4" / "metrics.json").write_text(
        json.dumps({"cross_validation": {"by": "corpus", "by_corpus": None}, "calibration": []})
    )
    (directory / "5" / "metrics.json").write_text((directory / "3" / "metrics.json").read_text())
    (directory / "6" / "metrics.json").write_text(
        json.dumps({"cross_validation": {"by": "corpus", "by_corpus": {"corpora": {"c1": None}}}})
    )
    (directory / "5" / "model.keras").unlink()  # broken: listed by emotion_models(), no figures
    found = rows(
        cursor,
        "SELECT version, evaluation, corpus, emotions, unweighted_accuracy, calibration_error "
        "FROM emotion_model_figures() WHERE name = 'figures' ORDER BY version, evaluation",
    )
    assert found == [
        (1, "corpus left out", "c1", '["sad","angry"]', 0.4, 0.05),
        (1, "unseen speakers", "c1", '["sad","angry"]', 0.6, 0.07),
        (3, "unseen speakers", "c1", '["sad","angry"]', 0.5, 0.1),  # no temperature: as the folds
    ]
    statuses = dict(
        rows(cursor, "SELECT version, status FROM emotion_models() WHERE name = 'figures'")
    )
    assert statuses[2] == "ok" and "model.keras" in statuses[5]
    shutil.rmtree(directory)


def test_a_model_with_other_features_works_by_name_but_cannot_be_active(server, models, clips):
    cursor = server.connect().cursor()
    with pytest.raises(
        Exception,
        match="expects other features than the server computes: n_mfcc 20 .*works by name",
    ):
        rows(cursor, "SELECT activate_model('mismatched/1')")
    # By name it gets its own features (20 coefficients, prosody rows the other way round),
    # computed per row.
    assert (
        rows(
            cursor,
            "SELECT emotion(content, 'mismatched/1'), emotion(content, 'biased/1') FROM clips",
        )
        == [("calm", "angry")] * 3
    )
    # An array of the server's features is a bad row for it (NULL); one of its own shape is scored.
    assert (
        rows(cursor, "SELECT emotion_scores(mfcc(content), 'mismatched/1') IS NULL FROM clips")
        == [(True,)] * 3
    )
    own = int(np.prod(other_features().shape))
    assert rows(
        cursor,
        f"SELECT emotion_scores(array_repeat(CAST(0 AS FLOAT), {own}), 'mismatched/1').calm > 0.99",
    ) == [(True,)]
    with pytest.raises(Exception, match="no model .*nonexistent/3"):
        rows(cursor, "SELECT activate_model('nonexistent/3')")
    assert rows(cursor, "SELECT name FROM emotion_models() WHERE active") == [("emoticana",)]


def run_example(cursor, name):
    from server.sqlscript import read_script

    result = None
    for statement in read_script(EXAMPLES / name):
        cursor.execute(statement)
        result = cursor.fetchall() if cursor.description else None
    return result


def test_seed_view_is_the_sum_of_the_eight_class_scores(cursor, clips):
    run_example(cursor, "03_seed_predictions.sql")
    cursor.execute("DESCRIBE seed_predictions")
    assert [r[0] for r in cursor.fetchall()] == [
        "predictions",
        "value",
        "mfccs",
        "neu+calm",
        "happy",
        "ang+sur",
        "sad+fea",
        "disg",
    ]
    seed = {
        r[0]: r[1:]
        for r in rows(
            cursor,
            "SELECT value, predictions, `neu+calm`, happy, `ang+sur`, `sad+fea`, disg, size(mfccs) "
            "FROM seed_predictions",
        )
    }
    scores = {
        p: json.loads(s)
        for p, s in rows(cursor, "SELECT path, to_json(emotion_scores(mfcc(content))) FROM clips")
    }
    assert set(seed) == set(scores) and len(seed) == 3
    for path, (predictions, *columns, n_mfcc) in seed.items():
        expected = [sum(scores[path][m] for m in members) for members in MERGED_CLASSES.values()]
        np.testing.assert_allclose(json.loads(predictions), expected, atol=1e-5)
        np.testing.assert_allclose(columns, expected, atol=1e-5)
        assert n_mfcc == 12943


def test_bi_view_is_scalar_and_persistent(server, cursor, clips):
    run_example(cursor, "04_emotion_bi.sql")
    cursor.execute("DESCRIBE emotion_bi")
    described = {r[0]: r[1] for r in cursor.fetchall()}
    assert all(not t.startswith(("struct", "array", "map")) for t in described.values())
    assert {
        "path",
        "actor",
        "predicted_emotion",
        "confidence",
        *(f"p_{e}" for e in EMOTIONS),
    } <= set(described)
    result = rows(
        cursor,
        "SELECT actor, predicted_emotion, confidence, "
        + " + ".join(f"p_{e}" for e in EMOTIONS)
        + " FROM emotion_bi",
    )
    assert len(result) == 3
    for actor, emotion, confidence, total in result:
        assert (
            actor in (12, 1, 7)
            and emotion in EMOTIONS
            and 0 < confidence <= 1
            and abs(total - 1) < 1e-4
        )
    other = server.connect().cursor()  # persistent: another session sees it
    assert ("default", "emotion_bi", False) in [tuple(r) for r in rows(other, "SHOW TABLES")]


def test_bi_view_answers_as_emotion_does_and_null_for_a_bad_clip(server, audio_root):
    """A dashboard's counts must agree with emotion(content): the whole of a longer clip is
    scored, and a clip that cannot be read is not counted as some emotion."""
    from tests.segmentgen import SAMPLE_RATE, compose

    directory = audio_root / "bi"
    directory.mkdir(exist_ok=True)
    rng = np.random.default_rng(4)
    samples, _ = compose(rng, [("speech", 3.0), ("silence", 0.5), ("speech", 4.0)])
    write_clip(directory / "long.wav", samples[:, None], SAMPLE_RATE, subtype="PCM_16")
    (directory / "bad.wav").write_bytes(b"RIFF not really a wave file")
    cursor = server.connect().cursor()
    cursor.execute("CREATE DATABASE IF NOT EXISTS bi_check")
    cursor.execute("USE bi_check")
    cursor.execute(
        f"CREATE TABLE clips USING binaryFile OPTIONS (path '{directory}', pathGlobFilter '*.wav')"
    )
    run_example(cursor, "04_emotion_bi.sql")
    answers = {
        row[0]: row[1:]
        for row in rows(
            cursor,
            "SELECT b.file, b.predicted_emotion, b.confidence, emotion(c.content), "
            "to_json(emotion_scores(c.content)) "
            "FROM emotion_bi b JOIN clips c ON c.path = b.path",
        )
    }
    cursor.execute("DROP DATABASE bi_check CASCADE")
    assert answers["bad.wav"] == (None, None, None, None)
    predicted, confidence, emotion, scores = answers["long.wav"]
    assert predicted == emotion
    assert confidence == pytest.approx(max(json.loads(scores).values()), abs=1e-9)


@pytest.mark.parametrize(
    "call, message",
    [
        ("degrade(content, 'telephone', 'abc')", "ArgumentError: degrade's seed must be a whole"),
        ("emotion(content, 'emoticana/\u00b2')", "ModelError: model version in"),
    ],
)
def test_a_bad_degrade_seed_or_model_version_fails_in_one_line(cursor, clips, call, message):
    with pytest.raises(Exception) as refused:
        rows(cursor, f"SELECT {call} FROM clips")
    text = str(refused.value)
    assert message in text and "Traceback" not in text


def test_evaluation_in_sql(cursor, clips):
    run_example(cursor, "05_evaluate.sql")
    confusion = rows(cursor, "SELECT actual, predicted, n FROM emotion_confusion")
    assert sum(n for _, _, n in confusion) == 3
    assert {a for a, _, _ in confusion} == {"angry", "neutral", "surprised"}
    truth = rows(cursor, "SELECT ravdess_meta(path).emotion, emotion(content) FROM clips")
    expected = Counter((actual, predicted or "unreadable") for actual, predicted in truth)
    assert sorted(confusion) == sorted((a, p, n) for (a, p), n in expected.items())
    expected_accuracy = sum(1 for a, p in truth if a == p) / 3
    cursor.execute(
        "SELECT sum(CASE WHEN predicted = actual THEN n ELSE 0 END) / sum(n) FROM emotion_confusion"
    )
    assert cursor.fetchall()[0][0] == pytest.approx(expected_accuracy)


def test_every_example_runs(cursor, clips):
    for script in sorted(EXAMPLES.glob("0[2-6]_*.sql")):
        assert run_example(cursor, script.name) is not None, script.name
