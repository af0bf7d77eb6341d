import dataclasses

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal

from tests.audiogen import voiced_signal
from udfs.features import (
    DEFAULT_FEATURES,
    FeatureConfig,
    canonical_clip,
    frame_mean_square,
    mfcc_features,
    mfcc_matrix,
    pitch_rows,
    speech_bounds,
    yin_f0,
)

CFG = DEFAULT_FEATURES


def reference_mfcc(clip: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """MFCC written out independently with numpy/scipy: STFT, Slaney mel, dB, DCT-II."""
    pad = cfg.n_fft // 2
    padded = np.pad(clip.astype(np.float64), pad, mode="constant")
    window = scipy.signal.get_window("hann", cfg.win_length, fftbins=True)
    left = (cfg.n_fft - cfg.win_length) // 2
    window = np.pad(window, (left, cfg.n_fft - cfg.win_length - left))
    n_frames = 1 + (len(padded) - cfg.n_fft) // cfg.hop_length
    frames = np.stack(
        [
            padded[i * cfg.hop_length : i * cfg.hop_length + cfg.n_fft] * window
            for i in range(n_frames)
        ],
        axis=1,
    )
    power = np.abs(np.fft.rfft(frames, axis=0)) ** 2

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        lin = f / (200.0 / 3)
        return np.where(
            f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0), lin
        )

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(
            m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3)
        )

    fft_freqs = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    weights = np.zeros((cfg.n_mels, len(fft_freqs)))
    for i in range(cfg.n_mels):
        lower = (fft_freqs - mel_points[i]) / (mel_points[i + 1] - mel_points[i])
        upper = (mel_points[i + 2] - fft_freqs) / (mel_points[i + 2] - mel_points[i + 1])
        weights[i] = (
            np.maximum(0, np.minimum(lower, upper)) * 2.0 / (mel_points[i + 2] - mel_points[i])
        )
    mel = weights @ power
    db = 10 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    return scipy.fft.dct(db, type=2, axis=0, norm="ortho")[: cfg.n_mfcc]


def test_mfcc_matches_independent_reference(rng):
    clip = canonical_clip(voiced_signal(rng, sample_rate=16000, seconds=2.0)[:, 0], 16000)
    ours = mfcc_matrix(clip)
    reference = reference_mfcc(clip, CFG)
    assert ours.shape == reference.shape == (CFG.n_mfcc, CFG.n_frames)
    # Stated tolerance: 1e-3 absolute (coefficients span hundreds; float32 vs float64 STFT).
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("seconds", [0.01, 1.0, 5.0])
def test_shape_dtype_and_finite(rng, sample_rate, channels, seconds):
    y = voiced_signal(
        rng, sample_rate=sample_rate, seconds=seconds, channels=channels, lead_silence_s=0.1
    ).T
    features = mfcc_features(y, sample_rate)
    assert features.shape == CFG.shape == (40 + 3, 301)  # coefficients, then the prosody rows
    assert features.dtype == np.float32
    assert np.all(np.isfinite(features))


def test_canonical_clip_length_and_centring(rng):
    speech = voiced_signal(rng, sample_rate=16000, seconds=1.0, lead_silence_s=1.0)[:, 0]
    clip = canonical_clip(speech, 16000)
    assert clip.shape == (CFG.clip_samples,)
    energy = np.abs(clip)
    active = np.flatnonzero(energy > 0.01)
    # the trimmed speech sits in the middle of the window, leading silence removed
    centre = (active[0] + active[-1]) / 2
    assert abs(centre - CFG.clip_samples / 2) < 0.05 * CFG.clip_samples


def test_long_clip_is_cropped_from_the_middle(rng):
    y = voiced_signal(rng, sample_rate=16000, seconds=8.0, lead_silence_s=0.0)[:, 0]
    assert canonical_clip(y, 16000).shape == (CFG.clip_samples,)


def test_resampling_preserves_content(rng):
    signal_48k = voiced_signal(rng, sample_rate=48000, seconds=1.5)
    signal_16k = voiced_signal(np.random.default_rng(20261125), sample_rate=16000, seconds=1.5)
    a = mfcc_features(signal_48k.T, 48000)
    b = mfcc_features(signal_16k.T, 16000)
    # the same synthetic voice at two rates: coefficient profiles agree closely, and so does its
    # pitch
    assert np.corrcoef(a[1 : CFG.n_mfcc].mean(axis=1), b[1 : CFG.n_mfcc].mean(axis=1))[0, 1] > 0.95
    voiced_a, voiced_b = a[CFG.n_mfcc] == 1, b[CFG.n_mfcc] == 1
    assert np.median(a[-1][voiced_a]) == pytest.approx(np.median(b[-1][voiced_b]), abs=0.01)


def test_silence_and_mono_mix(rng):
    silence = np.zeros((2, 16000), np.float32)
    assert np.all(np.isfinite(mfcc_features(silence, 16000)))
    mono = voiced_signal(rng, sample_rate=16000, seconds=1.0)[:, 0]
    stereo_same = np.stack([mono, mono])
    np.testing.assert_allclose(
        mfcc_features(stereo_same, 16000), mfcc_features(mono, 16000), atol=1e-4
    )


def test_config_round_trip():
    assert FeatureConfig.from_dict(CFG.to_dict()) == CFG
    assert CFG.n_frames == 1 + CFG.clip_samples // CFG.hop_length


def test_mfcc_matches_librosa(rng):
    """The hand-written MFCC computes librosa.feature.mfcc with the documented options."""
    clip = canonical_clip(voiced_signal(rng, sample_rate=16000, seconds=2.5, f0=210.0)[:, 0], 16000)
    reference = librosa.feature.mfcc(
        y=clip,
        sr=CFG.sample_rate,
        n_mfcc=CFG.n_mfcc,
        n_fft=CFG.n_fft,
        win_length=CFG.win_length,
        hop_length=CFG.hop_length,
        n_mels=CFG.n_mels,
        fmin=CFG.fmin,
        fmax=CFG.fmax,
        center=True,
        window="hann",
        htk=False,
        power=2.0,
        dct_type=2,
        norm="ortho",
    )
    np.testing.assert_allclose(mfcc_matrix(clip), reference, atol=1e-3, rtol=0)


@pytest.mark.parametrize("seconds", [0.005, 0.02, 0.7, 3.3])
@pytest.mark.parametrize("lead_silence_s", [0.0, 0.25])
@pytest.mark.parametrize("noise_floor", [0.0, 1e-4, 0.02])
def test_speech_bounds_match_librosa_trim(rng, seconds, lead_silence_s, noise_floor):
    y = voiced_signal(rng, sample_rate=16000, seconds=seconds, lead_silence_s=lead_silence_s)[:, 0]
    y = (y + noise_floor * rng.standard_normal(y.size)).astype(np.float32)
    _, expected = librosa.effects.trim(
        y, top_db=CFG.trim_top_db, frame_length=CFG.win_length, hop_length=CFG.hop_length
    )
    assert speech_bounds(y) == tuple(int(v) for v in expected)


def test_frame_mean_square_is_librosa_rms_squared(rng):
    y = voiced_signal(rng, sample_rate=16000, seconds=1.3)[:, 0]
    rms = librosa.feature.rms(
        y=y,
        frame_length=CFG.win_length,
        hop_length=CFG.hop_length,
        center=True,
        pad_mode="constant",
    )[0]
    np.testing.assert_allclose(
        frame_mean_square(y), rms.astype(np.float64) ** 2, rtol=1e-4, atol=1e-10
    )


PITCH = FeatureConfig(pitch=True)


@pytest.mark.parametrize("f0", [110.0, 180.0, 300.0])
def test_pitch_rows_follow_the_fundamental(rng, f0):
    clip = canonical_clip(
        voiced_signal(rng, sample_rate=16000, seconds=2.0, f0=f0, lead_silence_s=0.3)[:, 0], 16000
    )
    voiced, relative, absolute = pitch_rows(clip, config=PITCH)
    assert set(np.unique(voiced)) == {0.0, 1.0}
    on = voiced == 1
    # About 2 s of syllables centred in 3 s: mostly voiced in the middle (the envelope dips
    # to silence between syllables), never in the zero padding at either end.
    assert on[60:240].mean() > 0.6 and not on[:30].any() and not on[-30:].any()
    # The tone has a +-3 % vibrato around f0: the absolute row is log2(f0 / 200) within that.
    assert np.median(absolute[on]) == pytest.approx(np.log2(f0 / 200.0), abs=0.02)
    assert np.abs(relative[on]).max() < 0.1 and np.median(relative[on]) == pytest.approx(
        0.0, abs=1e-6
    )
    assert not relative[~on].any() and not absolute[~on].any()


def test_pitch_rows_of_silence_are_zero(rng):
    assert not pitch_rows(np.zeros(CFG.clip_samples, np.float32), config=PITCH).any()
    tone = canonical_clip(voiced_signal(rng, sample_rate=16000, seconds=2.0, f0=150.0)[:, 0], 16000)
    quiet = tone.copy()
    quiet[CFG.clip_samples // 2 :] *= 1e-3  # 60 dB down: below the loudness gate of the voiced flag
    assert pitch_rows(quiet, config=PITCH)[0][CFG.n_frames // 2 + 5 :].sum() == 0


def test_pitch_features_are_the_mfcc_then_the_prosody_rows(rng):
    y = voiced_signal(rng, sample_rate=22050, seconds=1.8, f0=160.0)[:, 0]
    features = mfcc_features(y, 22050, config=PITCH)
    assert (
        features.shape == PITCH.shape == (CFG.n_mfcc + 3, CFG.n_frames)
        and features.dtype == np.float32
    )
    np.testing.assert_array_equal(
        features[: CFG.n_mfcc],
        mfcc_features(y, 22050, config=dataclasses.replace(PITCH, pitch=False)),
    )
    np.testing.assert_array_equal(
        features[CFG.n_mfcc :], pitch_rows(canonical_clip(y, 22050), config=PITCH)
    )


def test_the_default_features_have_the_pitch_rows_and_a_removed_setting_is_refused():
    assert FeatureConfig() == DEFAULT_FEATURES and DEFAULT_FEATURES.pitch
    assert FeatureConfig(pitch=False).shape == (CFG.n_mfcc, CFG.n_frames)
    # The periodicity row was measured as no gain and removed; a features.json naming it is
    # another feature version, which the model store refuses (it cannot be computed).
    with pytest.raises(TypeError, match="periodicity"):
        FeatureConfig.from_dict({**DEFAULT_FEATURES.to_dict(), "periodicity": False})


def test_yin_f0_of_some_frames_is_the_same_as_of_all(rng):
    y = voiced_signal(rng, sample_rate=16000, seconds=3.0, f0=123.0, lead_silence_s=0.0)[
        : PITCH.clip_samples, 0
    ]
    f0 = yin_f0(y, config=PITCH)
    mask = np.arange(PITCH.n_frames) % 3 == 0
    some = yin_f0(y, config=PITCH, only=mask)
    np.testing.assert_array_equal(some[mask], f0[mask])
    assert np.isnan(some[~mask]).all()


@pytest.mark.parametrize("signal", ["tone", "chirp", "noise", "silence-and-tone"])
def test_yin_f0_is_librosa_yin(rng, signal):
    n = PITCH.clip_samples
    t = np.arange(n) / 16000
    if signal == "tone":
        y = voiced_signal(rng, sample_rate=16000, seconds=3.0, f0=123.0, lead_silence_s=0.0)[:n, 0]
    elif signal == "chirp":
        y = 0.3 * np.sin(2 * np.pi * (80 * t + 60 * t**2)) + 0.01 * rng.standard_normal(n)
    elif signal == "noise":
        y = 0.2 * rng.standard_normal(n)
    else:
        y = np.concatenate(
            [
                np.zeros(n // 2),
                voiced_signal(rng, sample_rate=16000, seconds=1.5, f0=260.0, lead_silence_s=0.0)[
                    :, 0
                ],
            ]
        )[:n]
    y = np.asarray(y, dtype=np.float32)
    expected = librosa.yin(
        y,
        fmin=PITCH.pitch_fmin,
        fmax=PITCH.pitch_fmax,
        sr=16000,
        frame_length=PITCH.pitch_frame,
        hop_length=PITCH.hop_length,
        center=True,
    )
    found = yin_f0(y, config=PITCH)
    assert found.shape == expected.shape == (PITCH.n_frames,)
    # Same lag choice in (nearly) every frame; a near-tie between two troughs may go either way in
    # float32.
    same = np.abs(np.log2(found) - np.log2(expected)) < 1e-3
    assert same.mean() > 0.99
    np.testing.assert_allclose(found[same], expected[same], rtol=1e-4)
    # Only some frames (pitch_rows passes the loud ones): those values, NaN elsewhere.
    only = rng.random(PITCH.n_frames) < 0.5
    partial = yin_f0(y, config=PITCH, only=only)
    np.testing.assert_array_equal(partial[only], found[only])
    assert np.isnan(partial[~only]).all()
