"""The emotion CNN: its augmentation layers (inert at inference, the intended transform in
training), the inference wrappers a saved model holds, and the recipe's hyperparameter checks."""

import re

import keras
import numpy as np
import pytest

from training.network import (
    balancing_factors,
    build_model,
    with_prior_correction,
    with_warp_averaging,
)
from training.recipe import DEFAULT_HYPERPARAMS, resolve_hyperparams
from udfs.features import DEFAULT_FEATURES, FeatureConfig, mfcc_features, mfcc_matrix
from udfs.model_layers import (
    LevelShift,
    MelWarp,
    PitchShift,
    TimeStretch,
    mel_warp_matrices,
    stretch_matrices,
)

SMALL = dict(filters=(4, 4, 4, 4, 4, 4))
MFCC_ONLY = FeatureConfig(pitch=False)


def test_mel_warp_and_stretch_are_identities_at_factor_one():
    np.testing.assert_allclose(
        mel_warp_matrices([1.0])[0], np.eye(DEFAULT_FEATURES.n_rows), atol=1e-6
    )
    np.testing.assert_allclose(stretch_matrices([1.0], 301)[0], np.eye(301), atol=1e-6)


@pytest.mark.parametrize("factor", [0.9, 0.95, 1.05, 1.1])
def test_mel_warp_moves_a_tone_like_the_same_tone_at_a_scaled_frequency(factor):
    # A tone at f warped by the factor should look like a tone at f * factor.
    sr, n = DEFAULT_FEATURES.sample_rate, DEFAULT_FEATURES.clip_samples
    t = np.arange(n) / sr

    def tone(f):
        return 0.3 * np.sin(2 * np.pi * f * t).astype(np.float32)

    source, target, other = (
        mfcc_matrix(tone(1500.0)),
        mfcc_matrix(tone(1500.0 * factor)),
        mfcc_matrix(tone(1500.0 / factor)),
    )
    warped = mel_warp_matrices([factor], config=MFCC_ONLY)[0] @ source
    # Compare spectral shape (c1..), the centre frame: the warp is nearer the scaled tone than the
    # unscaled one.

    def distance(a, b):
        return np.linalg.norm(a[1:, 150] - b[1:, 150])

    assert distance(warped, target) < 0.5 * distance(source, target)
    assert distance(warped, target) < distance(warped, other)


@pytest.mark.parametrize("rate", [0.85, 1.15])
def test_stretch_keeps_the_centre_and_scales_distances_from_it(rate):
    frames = 301
    x = np.zeros((1, frames), np.float32)
    x[0, 150 + 40] = 1.0  # an impulse 40 frames after the centre
    y = x @ stretch_matrices([rate], frames)[0].T
    assert y[0, 150] == 0.0
    peak = np.argmax(y[0])
    assert abs((peak - 150) - 40 / rate) <= 1.0


def test_augmentation_layers_are_inert_unless_training(rng):
    x = rng.normal(size=(3, DEFAULT_FEATURES.n_mfcc, DEFAULT_FEATURES.n_frames)).astype(np.float32)
    for layer in (MelWarp(0.1, seed=1), TimeStretch(0.15, seed=1)):
        np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
        changed = np.asarray(layer(x, training=True))
        assert changed.shape == x.shape
        assert not np.allclose(changed, x)


def test_model_with_every_augmentation_saves_loads_and_predicts_deterministically(tmp_path, rng):
    model = build_model(input_shape=DEFAULT_FEATURES.shape, **SMALL)
    assert {
        "augment_warp",
        "augment_pitch",
        "augment_stretch",
        "augment_shift",
        "augment_mask",
        "augment_noise",
    } <= {l.name for l in model.layers}
    x = rng.normal(size=(2, *DEFAULT_FEATURES.shape)).astype(np.float32)
    first = np.asarray(model(x, training=False))
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), first, rtol=1e-5, atol=1e-6)
    assert loaded.get_layer("augment_warp").get_config()["max_warp"] == pytest.approx(0.1)


def test_augmentation_can_be_turned_off():
    model = build_model(input_shape=DEFAULT_FEATURES.shape, mel_warp=0.0, time_stretch=0.0, **SMALL)
    assert not {"augment_warp", "augment_stretch"} & {l.name for l in model.layers}


@pytest.mark.parametrize(
    "factors, config",
    [
        ((0.94, 1.06), MFCC_ONLY),
        ((0.9,), MFCC_ONLY),
        ((0.94, 1.06), FeatureConfig(pitch=True)),
    ],
)
def test_warp_averaging_is_the_mean_over_the_warped_inputs_and_survives_saving(
    tmp_path, rng, factors, config
):
    network = build_model(input_shape=config.shape, prosody_rows=config.prosody_rows, **SMALL)
    features = (rng.normal(size=(3, *config.shape)) * 10).astype(np.float32)
    averaged = with_warp_averaging(network, factors, prosody_rows=config.prosody_rows)
    warped = [features] + [
        np.einsum("ij,njt->nit", m, features) for m in mel_warp_matrices(factors, config=config)
    ]
    expected = np.mean([network.predict(x, verbose=0) for x in warped], axis=0)
    np.testing.assert_allclose(averaged.predict(features, verbose=0), expected, atol=1e-5)
    averaged.save(tmp_path / "averaged.keras")
    loaded = keras.models.load_model(tmp_path / "averaged.keras", compile=False)
    np.testing.assert_allclose(loaded.predict_on_batch(features[:1]), expected[:1], atol=1e-5)
    assert with_warp_averaging(network, ()) is network


def test_prior_correction_divides_out_the_training_frequencies_and_survives_saving(tmp_path, rng):
    counts = (80, 160, 160, 160, 160, 160, 160, 160)  # RAVDESS: half as many neutral clips
    assert balancing_factors(counts) == pytest.approx((1.875,) + (0.9375,) * 7)
    network = with_warp_averaging(build_model(**SMALL), (0.94, 1.06))
    features = (rng.normal(size=(4, *DEFAULT_FEATURES.shape)) * 10).astype(np.float32)
    raw = network.predict(features, verbose=0)
    balanced = with_prior_correction(network, counts)
    expected = raw * np.array([2.0] + [1.0] * 7)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        balanced.predict(features, verbose=0), expected, rtol=1e-5, atol=1e-6
    )
    assert balanced.predict(features, verbose=0)[:, 0].min() > raw[:, 0].min()
    balanced.save(tmp_path / "balanced.keras")
    loaded = keras.models.load_model(tmp_path / "balanced.keras", compile=False)
    np.testing.assert_allclose(loaded.predict_on_batch(features), expected, rtol=1e-5, atol=1e-6)
    assert with_prior_correction(network, ()) is network


def test_balancing_factors_leave_balanced_and_absent_classes_alone():
    assert balancing_factors([5, 5, 5]) == (1.0, 1.0, 1.0)
    assert balancing_factors([0, 10, 30]) == (1.0, 2.0, 2.0 / 3.0)
    for bad in ([], [0, 0], [3, -1]):
        with pytest.raises(ValueError, match="class counts"):
            balancing_factors(bad)
    with pytest.raises(ValueError, match="3 class counts for a model with 8 outputs"):
        with_prior_correction(build_model(**SMALL), [1, 2, 3])


def test_the_vocal_tract_warp_leaves_the_prosody_rows_alone(rng):
    config = DEFAULT_FEATURES
    matrices = mel_warp_matrices([0.9, 1.1], config=config)
    assert matrices.shape == (2, config.n_rows, config.n_rows)
    np.testing.assert_array_equal(
        matrices[:, : config.n_mfcc, : config.n_mfcc],
        mel_warp_matrices([0.9, 1.1], config=MFCC_ONLY),
    )
    np.testing.assert_array_equal(
        matrices[:, config.n_mfcc :, :], np.eye(config.n_rows)[config.n_mfcc :][None].repeat(2, 0)
    )
    layer = MelWarp(0.1, prosody_rows=config.prosody_rows, seed=3)
    features = rng.normal(size=(4, *config.shape)).astype(np.float32)
    warped = np.asarray(layer(features, training=True))
    np.testing.assert_array_equal(warped[:, config.n_mfcc :], features[:, config.n_mfcc :])
    assert not np.allclose(warped[:, : config.n_mfcc], features[:, : config.n_mfcc])
    assert MelWarp.from_config(layer.get_config()).prosody_rows == config.prosody_rows


def test_the_pitch_shift_moves_only_the_absolute_pitch_of_voiced_frames_by_one_amount_per_clip(
    rng,
):
    config = DEFAULT_FEATURES
    features = rng.normal(size=(6, *config.shape)).astype(np.float32)
    voiced_row = config.n_mfcc
    features[:, voiced_row] = rng.random(size=(6, config.n_frames)) > 0.5
    layer = PitchShift(0.25, prosody_rows=config.prosody_rows, seed=2)
    np.testing.assert_array_equal(np.asarray(layer(features, training=False)), features)
    change = np.asarray(layer(features, training=True)) - features
    absolute = voiced_row + 2
    np.testing.assert_array_equal(np.delete(change, absolute, axis=1), 0.0)
    voiced = features[:, voiced_row] == 1
    np.testing.assert_array_equal(change[:, absolute][~voiced], 0.0)
    shifts = [np.unique(change[i, absolute][voiced[i]]) for i in range(len(features))]
    assert all(np.ptp(s) < 1e-6 and abs(s[0]) <= 0.25 for s in shifts)
    assert len({round(float(s[0]), 5) for s in shifts}) > 1  # drawn per clip
    assert PitchShift.from_config(layer.get_config()).prosody_rows == config.prosody_rows
    with pytest.raises(ValueError, match="pitch rows"):
        build_model(input_shape=MFCC_ONLY.shape, prosody_rows=0, pitch_shift=0.25, **SMALL)
    with pytest.raises(ValueError, match="PitchShift needs the pitch rows"):
        PitchShift(0.25, prosody_rows=0)
    for bad in (-0.1, 1.5, True, "0.25"):
        with pytest.raises(
            ValueError, match=r"pitch_shift must be a number of octaves in \[0, 1\]"
        ):
            build_model(pitch_shift=bad, **SMALL)
    assert "augment_pitch" in {l.name for l in build_model(**SMALL).layers}  # on by default
    assert "augment_pitch" not in {l.name for l in build_model(pitch_shift=0.0, **SMALL).layers}
    # Without pitch rows the default builds no shift rather than failing.
    assert "augment_pitch" not in {
        l.name for l in build_model(input_shape=MFCC_ONLY.shape, prosody_rows=0, **SMALL).layers
    }


def test_resolved_hyperparameters_are_the_whole_set_and_build_the_same_model():
    """The trainer hands the nodes every hyperparameter resolved, not only the overrides."""
    resolved = resolve_hyperparams({"seed": 3, "level_shift": 2}, prosody_rows=0)
    assert set(resolved) == set(DEFAULT_HYPERPARAMS)
    assert (
        resolved["seed"] == 3 and resolved["level_shift"] == 2 and resolved["pitch_shift"] == 0.0
    )  # no pitch rows
    built = build_model(input_shape=MFCC_ONLY.shape, prosody_rows=0, **{**resolved, **SMALL})
    assert built.get_layer("augment_level").get_config()["seed"] == 3 + 6
    assert "augment_pitch" not in {l.name for l in built.layers}
    # The experiments measured as no gain are gone, not hidden options.
    for removed in ("colour", "members", "mixup"):
        with pytest.raises(TypeError, match=rf"unknown hyperparameters: \['{removed}'\]"):
            resolve_hyperparams({removed: 1}, prosody_rows=0)
    for bad, message in (
        ({"filters": 8}, "filters must be a list of whole numbers >= 1, got 8"),
        ({"kernels": [5, 0, 5, 5, 3, 3]}, "kernels must be a list of whole numbers >= 1"),
        ({"seed": "a"}, "seed must be a whole number, got 'a'"),
        ({"seed": True}, "seed must be a whole number"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            resolve_hyperparams(bad, prosody_rows=0)


def test_the_level_shift_is_what_a_louder_or_quieter_recording_does_to_the_features(rng):
    # A voiced, amplitude-modulated tone in noise, and the same clip 6 dB quieter: every row
    # the features have (coefficients and prosody) agrees but c0, by 6 * sqrt(n_mels).
    t = np.arange(int(2.0 * DEFAULT_FEATURES.sample_rate)) / DEFAULT_FEATURES.sample_rate
    voice = (
        0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        + 0.01 * rng.standard_normal(t.size)
    ).astype(np.float32)
    loud, quiet = (
        mfcc_features(voice * gain, DEFAULT_FEATURES.sample_rate) for gain in (1.0, 10 ** (-6 / 20))
    )
    change = quiet - loud
    np.testing.assert_allclose(change[0], -6 * np.sqrt(DEFAULT_FEATURES.n_mels), atol=1e-3)
    np.testing.assert_allclose(change[1:], 0.0, atol=1e-3)

    layer = LevelShift(6.0, n_mels=DEFAULT_FEATURES.n_mels, seed=3)
    batch = np.stack([loud] * 8)
    np.testing.assert_array_equal(np.asarray(layer(batch, training=False)), batch)
    shifted = np.asarray(layer(batch, training=True)) - batch
    np.testing.assert_array_equal(shifted[:, 1:], 0.0)
    gains = shifted[:, 0].mean(axis=1) / np.sqrt(DEFAULT_FEATURES.n_mels)  # dB, one per clip
    np.testing.assert_allclose(np.ptp(shifted[:, 0], axis=1), 0.0, atol=1e-4)
    assert np.all(np.abs(gains) <= 6.0) and np.ptp(gains) > 1.0
    assert LevelShift.from_config(layer.get_config()).get_config() == layer.get_config()
    for bad in (-1, 41, True, "6"):
        with pytest.raises(ValueError, match=r"level_shift must be a number of dB in \[0, 40\]"):
            build_model(level_shift=bad, **SMALL)
    assert "augment_level" in {l.name for l in build_model(**SMALL).layers}  # on by default
    assert "augment_level" not in {l.name for l in build_model(level_shift=0.0, **SMALL).layers}


def test_the_partial_label_loss_is_the_cross_entropy_among_the_corpus_emotions(rng):
    from training.schedule import partial_label_loss, partial_targets

    probabilities = rng.dirichlet(np.ones(8), size=6).astype(np.float32)
    labels = np.array([0, 1, 4, 4, 5, 7])
    every = np.ones((6, 8))
    full = np.asarray(partial_label_loss(partial_targets(labels, every), probabilities))
    np.testing.assert_allclose(full, -np.log(probabilities[np.arange(6), labels]), rtol=1e-5)
    # A corpus of four emotions: the other four's probability is no evidence either way.
    four = np.zeros((6, 8))
    four[:, [0, 1, 4, 7]] = 1
    four[:, 5] = labels == 5
    partial = np.asarray(partial_label_loss(partial_targets(labels, four), probabilities))
    kept = (probabilities * four)[np.arange(6), labels] / (probabilities * four).sum(axis=1)
    np.testing.assert_allclose(partial, -np.log(kept), rtol=1e-5)
    assert (partial <= full + 1e-6).all()
    moved = probabilities.copy()
    moved[:, 2] += 5.0  # more weight on an emotion the corpus lacks changes nothing
    moved /= moved.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        np.asarray(partial_label_loss(partial_targets(labels, four), moved)), partial, rtol=1e-4
    )
    with pytest.raises(ValueError, match="outside its corpus"):
        partial_targets([2], four[:1])


def test_a_model_trains_on_partial_label_targets(rng):
    from training.schedule import compile_model, partial_targets

    model = compile_model(build_model(**SMALL), learning_rate=1e-3)
    features = rng.normal(size=(8, *DEFAULT_FEATURES.shape)).astype(np.float32)
    masks = np.ones((8, 8))
    masks[4:, :4] = 0  # half the clips from a corpus without the first four emotions
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    history = model.fit(features, partial_targets(labels, masks), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and "accuracy" in history.history


def test_the_fitted_temperature_makes_overconfident_predictions_honest(rng):
    from training.calibration import fit_calibration, scaled
    from training.metrics import expected_calibration_error
    from udfs.model_layers import Temperature

    # Labels drawn from softened probabilities, shown to the fit sharpened by 1/3: it finds ~3.
    logits = rng.normal(size=(4000, 8)) * 1.5
    honest = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(8, p=p) for p in honest])
    overconfident = scaled(honest, 1 / 3)
    temperature = fit_calibration(overconfident, labels)["temperature"]
    assert temperature == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(
        overconfident.max(axis=1), overconfident.argmax(1) == labels
    )
    fixed = scaled(overconfident, temperature)
    after = expected_calibration_error(fixed.max(axis=1), fixed.argmax(1) == labels)
    assert after < 0.03 < before
    np.testing.assert_array_equal(fixed.argmax(axis=1), overconfident.argmax(axis=1))
    layer = Temperature(temperature)
    np.testing.assert_allclose(
        np.asarray(layer(overconfident[:5].astype(np.float32))), fixed[:5], atol=1e-5
    )
    assert Temperature.from_config(layer.get_config()).temperature == temperature


def test_far_audio_is_softened_unless_the_held_out_answers_say_otherwise(rng):
    """Held-out corpora with few clips beyond the reference hardly tell one slope from another:
    the steepest of the calibrations within the tolerance is taken.  Where the far clips are
    answered as well as the near ones and softening them costs more than that, it is not."""
    from training.calibration import (
        SLOPES,
        TOLERANCE,
        calibrated,
        fit_calibration,
        mean_calibration_error,
    )

    logits = rng.normal(size=(3000, 8)) * 2.0
    honest = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(8, p=p) for p in honest])
    groups = np.zeros(3000)
    distance = np.full(3000, -0.5)
    distance[:30] = 0.4  # one clip in a hundred beyond the reference, answered as well as the rest
    fitted = fit_calibration(honest, labels, groups, distance)
    exact = fit_calibration(honest, labels, groups, distance, tolerance=0.0)
    assert fitted["slope"] == max(SLOPES) > exact["slope"]

    def error(calibration):
        return mean_calibration_error(
            calibrated(honest, calibration, distance), labels, groups, distance
        )

    assert error(fitted) <= error(exact) + TOLERANCE
    # The far clips are softened more; the near ones keep the temperature the data asks for.
    assert (
        calibrated(honest, fitted, distance)[:30].max(axis=1).mean()
        < calibrated(honest, exact, distance)[:30].max(axis=1).mean()
    )
    assert fitted["temperature"] == pytest.approx(1.0, rel=0.15)
    # With no clip beyond the reference every slope fits alike: the steepest.
    near = np.full(3000, -0.5)
    assert fit_calibration(honest, labels, groups, near, tolerance=0.0)["slope"] == max(SLOPES)
    # A third of the clips far and answered as well as the near ones: softening them is wrong.
    distance[:1000] = 0.4
    assert fit_calibration(honest, labels, groups, distance)["slope"] < 1.0


def test_audio_far_from_the_training_speech_is_softened_where_it_is_wrong_more_often(rng):
    from training.calibration import calibrated, fit_calibration, mean_calibration_error
    from training.encoder_head import distances, state_statistics
    from udfs.model_layers import DistanceTemperature

    # Encoder states: training speech near the origin; a third of the held-out clips far off,
    # on which the (equally sure) predictions are no better than chance.
    states = rng.normal(size=(3000, 16))
    statistics = state_statistics(states)
    held = rng.normal(size=(3000, 16))
    held[:1000] *= 3.0
    distance = distances(held, statistics)
    assert (distance[:1000] > 0).mean() > 0.95 and (distance[1000:] > 0).mean() < 0.2
    logits = rng.normal(size=(3000, 8)) * 2.0
    sure = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(8, p=p) for p in sure])
    labels[:1000] = rng.integers(0, 8, size=1000)
    groups = np.zeros(3000)
    plain = fit_calibration(sure, labels, groups)
    fitted = fit_calibration(sure, labels, groups, distance)
    assert fitted["slope"] > 0
    with_distance = calibrated(sure, fitted, distance)
    # Confidence holds among the far clips and the near ones alike, not just on average.
    assert mean_calibration_error(
        with_distance, labels, groups, distance
    ) < 0.5 * mean_calibration_error(calibrated(sure, plain), labels, groups, distance)
    assert with_distance[:1000].max(axis=1).mean() < 0.25 < with_distance[1000:].max(axis=1).mean()
    np.testing.assert_array_equal(with_distance.argmax(axis=1), sure.argmax(axis=1))
    # The saved model's layer computes the same from the states themselves.
    layer = DistanceTemperature(
        fitted["temperature"],
        fitted["slope"],
        statistics["log_reference"],
        statistics["mean"],
        statistics["variance"],
    )
    some = np.arange(0, 3000, 150)  # far clips and near ones
    np.testing.assert_allclose(
        np.asarray(layer([sure[some].astype(np.float32), held[some].astype(np.float32)])),
        with_distance[some],
        atol=1e-4,
    )
    again = DistanceTemperature.from_config(layer.get_config())
    assert (again.slope, again.log_reference) == (layer.slope, layer.log_reference)
    np.testing.assert_allclose(again.variance, statistics["variance"], rtol=1e-6)


@pytest.mark.parametrize(
    "reference", ["emoticana/²", "emoticana/٢٠", "emoticana/2.0", "emoticana/-1"]
)
def test_a_model_version_is_ascii_digits(reference):
    """'²'.isdigit() is true but int('²') fails (a traceback, not one line), and '٢٠' was 20."""
    from udfs.errors import ModelError
    from udfs.model_store import parse_reference

    with pytest.raises(ModelError, match="must be a whole number"):
        parse_reference(reference)
    assert parse_reference("emoticana/20") == ("emoticana", 20)
