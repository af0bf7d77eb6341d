"""The pretrained speech encoder inside the model (``udfs/speech_encoder.py``): its weights read
without torch into Keras, its input rebuilt from the feature matrix, and the fused model's
layers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audiogen import voiced_signal
from udfs import speech_encoder
from udfs.features import DEFAULT_FEATURES, canonical_clip, mfcc_matrix


def utterance(seconds: float, f0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return voiced_signal(rng, sample_rate=16000, seconds=seconds, f0=f0)[:, 0]


def features_of(y: np.ndarray) -> np.ndarray:
    """The model's input for a 16 kHz clip, without the prosody rows' cost (they are not read)."""
    rows = np.zeros(DEFAULT_FEATURES.shape, dtype=np.float32)
    rows[: DEFAULT_FEATURES.n_mfcc] = mfcc_matrix(canonical_clip(y, 16000))
    return rows


def lstm_reference(x: np.ndarray, weights: dict, layer: int) -> np.ndarray:
    """torch's LSTM equations on the checkpoint's own tensors: ``(frames, inputs)`` to the hidden
    states ``(frames, units)``."""
    w_ih, w_hh = weights[f"lstm.weight_ih_l{layer}"], weights[f"lstm.weight_hh_l{layer}"]
    bias = weights[f"lstm.bias_ih_l{layer}"] + weights[f"lstm.bias_hh_l{layer}"]
    h = np.zeros(w_hh.shape[1])
    c = np.zeros(w_hh.shape[1])
    out = []
    for frame in x:
        i, f, g, o = np.split(w_ih @ frame + w_hh @ h + bias, 4)
        sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def test_the_installed_weights_are_read_without_torch():
    weights = speech_encoder.encoder_weights()
    assert weights["lstm.weight_ih_l0"].shape == (4 * 256, 40)
    for layer in (1, 2):
        assert weights[f"lstm.weight_ih_l{layer}"].shape == (4 * 256, 256)
        assert weights[f"lstm.weight_hh_l{layer}"].shape == (4 * 256, 256)
    assert all(np.isfinite(w).all() and np.abs(w).max() > 0 for w in weights.values())


def test_a_file_that_is_not_a_checkpoint_is_one_clear_error(tmp_path):
    bad = tmp_path / "pretrained.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(
        speech_encoder.EncoderUnavailable, match="not a readable legacy torch checkpoint"
    ):
        speech_encoder.read_legacy_checkpoint(bad)


def test_the_keras_encoder_computes_torchs_lstm_on_its_front_end():
    """Gate order, transposes and the two biases: the Keras states are torch's equations', and
    each layer's mean and deviation are taken over the frames that are not the window's padding
    (a 1 s clip leaves about 60 of the 160 frames silent)."""
    import keras

    encoder = speech_encoder.build_encoder()
    weights = speech_encoder.encoder_weights()
    x = np.stack([features_of(utterance(2.5, 150.0, 1)), features_of(utterance(1.0, 210.0, 2))])
    front = keras.Model(encoder.input, encoder.get_layer("encoder_front_end").output)
    states = speech_encoder.encoder_states(x)
    assert states.shape == (2, 2 * speech_encoder.LAYERS * speech_encoder.UNITS)
    silent = []
    for clip, power in enumerate(np.asarray(front.predict(x, verbose=0)).astype(np.float64)):
        assert power.shape == (speech_encoder.PARTIAL_FRAMES, speech_encoder.BANDS)
        sound = power.sum(axis=1) > 0
        silent.append(int((~sound).sum()))
        sequence, expected, everywhere = power, [], []
        for layer in range(speech_encoder.LAYERS):
            sequence = lstm_reference(sequence, weights, layer)
            expected += [sequence[sound].mean(axis=0), sequence[sound].std(axis=0)]
            everywhere += [sequence.mean(axis=0), sequence.std(axis=0)]
        np.testing.assert_allclose(states[clip], np.concatenate(expected), atol=2e-4)
        if not sound.all():
            # Taken over the padding too, the statistics would differ.
            assert np.abs(states[clip] - np.concatenate(everywhere)).max() > 0.01
    assert silent[0] == 0 and silent[1] > 40, silent
    assert np.abs(states).max() > 0.01


def test_frame_statistics_leave_out_silent_frames_and_survive_saving():
    from udfs.model_layers import SpeechFrameStatistics

    rng = np.random.default_rng(5)
    power = rng.uniform(0.1, 1.0, size=(3, 20, 4)).astype(np.float32)
    power[0, :7] = 0.0  # padding before the speech
    power[2] = 0.0  # nothing but padding
    states = rng.normal(size=(3, 20, 6)).astype(np.float32)
    layer = SpeechFrameStatistics.from_config(SpeechFrameStatistics().get_config())
    out = np.asarray(layer([power, states]))
    assert out.shape == (3, 12)
    np.testing.assert_allclose(out[0, :6], states[0, 7:].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(out[0, 6:], states[0, 7:].std(axis=0), atol=1e-5)
    np.testing.assert_allclose(out[1], np.r_[states[1].mean(0), states[1].std(0)], atol=1e-5)
    np.testing.assert_array_equal(out[2], np.zeros(12))


def test_the_cepstral_rows_give_back_the_smoothed_log_mel_spectrum():
    """The inverse of the features' DCT: a spectrum the 40 coefficients hold whole comes back
    band by band (a flat one exactly: the padding's floor stays flat)."""
    import scipy.fft

    bands = np.arange(DEFAULT_FEATURES.n_mels)
    smooth = -30.0 - 0.4 * bands + 6.0 * np.cos(2 * np.pi * bands / 32.0)
    for spectrum in (smooth, np.full(DEFAULT_FEATURES.n_mels, -57.0)):
        frames = np.tile(spectrum, (5, 1))
        cepstra = scipy.fft.dct(frames, type=2, norm="ortho", axis=-1)[:, : DEFAULT_FEATURES.n_mfcc]
        rebuilt = speech_encoder.smoothed_mel_db(cepstra.T)
        np.testing.assert_allclose(rebuilt, frames, atol=0.5)


def test_a_short_clip_is_heard_at_the_speech_level_with_silence_around_it():
    """A 1 s clip fills a third of the 3 s window: the padding reaches the encoder as silence,
    and the speech itself at the level the encoder was trained at, whatever the clip's length."""
    import keras

    encoder = speech_encoder.build_encoder()
    front = keras.Model(encoder.input, encoder.get_layer("encoder_front_end").output)
    t = np.arange(16000) / 16000
    vowel = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)).astype(np.float32)
    for gain in (0.3, 0.003):
        power = np.asarray(front.predict(features_of(gain * vowel)[None], verbose=0))[0]
        frame_power = power.sum(axis=1)
        silent = frame_power == 0
        # 1 s of 1.6 s is speech: the rest, about 60 frames, is the window's padding.
        assert 50 <= silent.sum() <= 70, silent.sum()
        level = 10 * np.log10(frame_power[~silent][5:-5].mean())
        assert level == pytest.approx(speech_encoder.SPEECH_LEVEL_DB, abs=1.0)


def test_the_front_end_rebuilds_the_encoders_mel_spectrum_from_the_cepstra():
    """The smoothed spectrum through the fitted map is the encoder's own front end (Resemblyzer's
    mel power) on the speech frames, within a few dB, at the level it was trained on."""
    import keras
    import librosa

    encoder = speech_encoder.build_encoder()
    front = keras.Model(encoder.input, encoder.get_layer("encoder_front_end").output)
    y = utterance(3.5, 120.0, 4)
    clip = canonical_clip(y, 16000)
    rebuilt = np.asarray(front.predict(features_of(y)[None], verbose=0))[0]
    start = (DEFAULT_FEATURES.n_frames - speech_encoder.PARTIAL_FRAMES) // 2
    exact = librosa.feature.melspectrogram(
        y=clip, sr=16000, n_fft=400, hop_length=160, n_mels=40
    ).T[start : start + speech_encoder.PARTIAL_FRAMES]
    speech = exact.sum(axis=1) > exact.sum(axis=1).max() * 1e-4
    # The rebuilt spectrum is at a fixed level: compare shapes, after the level's offset.
    error = 10 * np.log10(rebuilt[speech] + 1e-12) - 10 * np.log10(exact[speech] + 1e-12)
    error -= np.median(error)
    assert np.median(np.abs(error)) < 3.0


def test_the_encoder_does_not_hear_the_recording_level():
    """Users' levels are arbitrary: the same speech 20 dB quieter gives the same states, its
    speech set to the level the encoder was trained at."""
    import keras

    y = utterance(3.0, 200.0, 7)
    loud, quiet, other = speech_encoder.encoder_states(
        np.stack([features_of(y), features_of(y * 0.1), features_of(utterance(3.0, 110.0, 7))])
    )
    # The features keep levels relative to the loudest frame (but for a -100 dB floor), so 20 dB
    # quieter moves the states only a little; another voice moves them far more.
    assert np.linalg.norm(loud - quiet) < 0.1 * np.linalg.norm(loud - other)
    # A steady vowel fills the window, so the middle frames carry the whole clip's level.
    t = np.arange(4 * 16000) / 16000
    vowel = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)).astype(np.float32)
    encoder = speech_encoder.build_encoder()
    front = keras.Model(encoder.input, encoder.get_layer("encoder_front_end").output)
    for gain in (0.3, 0.003):
        power = np.asarray(front.predict(features_of(gain * vowel)[None], verbose=0))[0]
        level = 10 * np.log10(power.sum(axis=1).mean())
        assert level == pytest.approx(speech_encoder.SPEECH_LEVEL_DB, abs=0.5)


def test_the_fusion_layer_is_a_weighted_product_and_survives_saving(tmp_path):
    import keras

    from training.encoder_head import fuse
    from udfs.model_format import load_keras_model_file
    from udfs.model_layers import LogLinearFusion

    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    q = np.array([[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], dtype=np.float32)
    a, b = keras.Input((3,)), keras.Input((3,))
    model = keras.Model([a, b], LogLinearFusion(0.25)([a, b]))
    model.save(tmp_path / "fused.keras")
    again = load_keras_model_file(tmp_path / "fused.keras")
    out = np.asarray(again.predict([p, q], verbose=0))
    np.testing.assert_allclose(out, fuse(p, q, 0.25), atol=1e-6)
    expected = p[0] * q[0] ** 0.25
    np.testing.assert_allclose(out[0], expected / expected.sum(), atol=1e-6)


def test_the_head_learns_each_corpus_s_own_emotions_and_answers_alike_every_time(tmp_path, rng):
    """The head on encoder states: trained with dropout, deterministic once trained, a
    probability over the eight emotions, and right on unseen rows whose states carry their
    emotion; it survives saving as the published model keeps it."""
    from training.encoder_head import fit_head
    from udfs.labels import EMOTIONS
    from udfs.model_format import load_keras_model_file

    corpora = {"a": ["neutral", "happy", "sad", "angry"], "b": ["neutral", "angry", "fearful"]}
    centres = rng.normal(0, 1, (len(EMOTIONS), 64))

    def rows(n):
        corpus = rng.choice(["a", "b"], n)
        labels = np.array([EMOTIONS.index(rng.choice(corpora[c])) for c in corpus])
        states = centres[labels] + rng.normal(0, 0.8, (n, 64))
        return states.astype(np.float32), labels, corpus

    states, labels, corpus = rows(600)
    head = fit_head(states, labels, corpus, corpora)
    test_states, test_labels, test_corpus = rows(200)
    first = np.asarray(head.predict(test_states, verbose=0))
    np.testing.assert_allclose(first, np.asarray(head.predict(test_states, verbose=0)))
    np.testing.assert_allclose(first.sum(axis=1), 1, atol=1e-5)
    own = np.array([[e in corpora[c] for e in EMOTIONS] for c in test_corpus])
    answers = np.argmax(np.where(own, first, 0), axis=1)
    assert np.mean(answers == test_labels) > 0.9
    head.save(tmp_path / "head.keras")
    again = np.asarray(
        load_keras_model_file(tmp_path / "head.keras").predict(test_states, verbose=0)
    )
    np.testing.assert_allclose(again, first, atol=1e-6)


def test_the_temporal_head_tells_emotions_by_how_the_states_move(tmp_path, rng):
    """The temporal head on every frame's states: classes told apart only by how a state moves
    over time (same mean and spread), after leading padding of any length; one answer every
    time, and the same after saving; the power input may have any number of bands."""
    from training.encoder_head import FrameSet, fit_temporal_head, temporal_answers
    from udfs.labels import EMOTIONS
    from udfs.model_format import load_keras_model_file

    corpora = {"a": ["neutral", "happy", "sad", "angry"], "b": ["neutral", "angry", "fearful"]}
    frames, units = 40, 16
    t = np.arange(frames)

    def rows(n):
        corpus = rng.choice(["a", "b"], n)
        labels = np.array([EMOTIONS.index(rng.choice(corpora[c])) for c in corpus])
        # Each emotion a sine of its own period: equal mean and spread, different course.
        period = 4.0 + 3.0 * labels[:, None]
        wave = np.sin(2 * np.pi * t[None] / period + rng.uniform(0, 6.3, (n, 1)))
        states = wave[..., None] * rng.normal(1, 0.1, (n, 1, units))
        states += rng.normal(0, 0.3, states.shape)
        sound = np.ones((n, frames), dtype=bool)
        sound[:, : rng.integers(0, 8)] = False
        states[~sound] = 0.0
        return sound, states.astype(np.float16), labels, corpus

    sound, states, labels, corpus = rows(800)
    # Trained on the first 600 rows of the set, read from it a batch at a time.
    head = fit_temporal_head(
        FrameSet(sound, states), np.arange(600), labels[:600], corpus[:600], corpora
    )
    test_sound, test_states, test_labels, test_corpus = (
        sound[600:],
        states[600:],
        labels[600:],
        corpus[600:],
    )
    power = np.repeat(test_sound[..., None], 40, axis=2).astype(np.float32)
    first = np.asarray(head.predict([power, test_states], verbose=0))
    np.testing.assert_allclose(first.sum(axis=1), 1, atol=1e-5)
    own = np.array([[e in corpora[c] for e in EMOTIONS] for c in test_corpus])
    assert np.mean(np.argmax(np.where(own, first, 0), axis=1) == test_labels) > 0.8
    np.testing.assert_allclose(np.asarray(head.predict([power, test_states], verbose=0)), first)
    # The batched answers come in the order of the rows asked for.
    asked = 600 + rng.permutation(200)[:150]
    np.testing.assert_allclose(
        temporal_answers(head, FrameSet(sound, states), asked), first[asked - 600], atol=1e-5
    )
    head.save(tmp_path / "temporal.keras")
    again = load_keras_model_file(tmp_path / "temporal.keras")
    np.testing.assert_allclose(
        np.asarray(again.predict([power, test_states], verbose=0)), first, atol=1e-5
    )


def test_the_fused_model_with_both_heads_computes_fuse_heads(tmp_path, rng):
    """One Keras model on the feature matrix: the network, the pooled head on the encoder's
    states and the temporal head on its frames, fused as ``fuse_heads`` fuses their answers."""
    import keras

    from training.encoder_head import FrameSet, fit_head, fit_temporal_head, fuse_heads, fused_model
    from udfs.labels import EMOTIONS

    corpora = {"a": ["neutral", "happy", "sad", "angry"]}
    x = np.stack([features_of(utterance(1.0 + 0.2 * i, 110 + 15 * i, i)) for i in range(8)])
    inputs = keras.Input(DEFAULT_FEATURES.shape)
    network = keras.Model(
        inputs, keras.layers.Dense(8, activation="softmax")(keras.layers.Flatten()(inputs))
    )
    network.save(tmp_path / "network.keras")
    states, power, frames = speech_encoder.build_encoder(frames=True).predict(x, verbose=0)
    labels = np.array([EMOTIONS.index(corpora["a"][i % 4]) for i in range(8)])
    corpus = np.array(["a"] * 8)
    head = fit_head(states, labels, corpus, corpora)
    temporal = fit_temporal_head(
        FrameSet(power.sum(-1) > 0, frames), np.arange(8), labels, corpus, corpora
    )
    statistics = {"mean": states.mean(0), "variance": states.var(0) + 1.0, "log_reference": 9.0}
    model = fused_model(
        tmp_path / "network.keras",
        head,
        statistics,
        {"temperature": 1.0, "slope": 0.0},
        temporal=temporal,
    )
    expected = fuse_heads(
        np.asarray(network.predict(x, verbose=0), np.float64),
        np.asarray(head.predict(states, verbose=0), np.float64),
        np.asarray(temporal.predict([power, frames], verbose=0), np.float64),
    )
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), expected, atol=1e-5)
