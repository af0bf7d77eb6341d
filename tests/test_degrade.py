"""Recording conditions (udfs.degrade): each step does what its name says, seeded and bounded."""

import io

import numpy as np
import pytest
import soundfile as sf

from tests.audiogen import voiced_signal
from udfs.degrade import CODECS, degrade_samples, encode_wav, parse_condition, resolve_condition
from udfs.errors import AudioError
from udfs.features import mfcc_features

RATE = 16000


@pytest.fixture
def speech(rng) -> np.ndarray:
    return voiced_signal(rng, sample_rate=RATE, seconds=2.0, f0=150.0, lead_silence_s=0.3)[:, 0]


def band_energy(y: np.ndarray, rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / rate)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def loud_power(y: np.ndarray) -> float:
    frames = y[: len(y) // 320 * 320].reshape(-1, 320)
    power = (frames**2).mean(axis=1)
    return float(power[power >= power.max() * 1e-3].mean())


def test_the_same_clip_condition_and_seed_give_the_same_samples(speech):
    first = degrade_samples(speech, RATE, "noise:0..20+reverb:0.3..0.8", seed=5)
    again = degrade_samples(speech, RATE, "noise:0..20+reverb:0.3..0.8", seed=5)
    other = degrade_samples(speech, RATE, "noise:0..20+reverb:0.3..0.8", seed=6)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.allclose(first[0], other[0])
    assert degrade_samples(speech, RATE, "clean")[0] == pytest.approx(speech, abs=1e-7)


def test_a_range_is_drawn_inside_its_bounds_and_varies_with_the_seed():
    values = {resolve_condition("noise:0..20", seed)[0].value for seed in range(40)}
    assert all(0 <= v <= 20 for v in values) and len(values) > 30
    assert resolve_condition("gain:-6", 3)[0].value == -6.0


@pytest.mark.parametrize(
    "condition, message",
    [
        ("", "non-empty"),
        ("whisper", "unknown condition step 'whisper'"),
        ("noise", "needs a value"),
        ("telephone:3", "takes no value"),
        ("noise:loud", "needs a number or a range"),
        ("noise:30..10", "must lie in"),
        ("gain:100", "must lie in"),
        ("codec:aac", "unknown codec 'aac'"),
    ],
)
def test_a_bad_condition_is_one_clear_error(condition, message):
    with pytest.raises(AudioError, match=message):
        resolve_condition(condition, 0)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_noise_is_added_at_the_asked_signal_to_noise_ratio(speech, snr):
    noisy, rate = degrade_samples(speech, RATE, f"noise:{snr}", seed=1)
    added = noisy.astype(np.float64) - speech
    # Clipping aside (speech peaks well below full scale), the added noise has the asked power.
    measured = 10 * np.log10(loud_power(speech) / np.mean(added**2))
    assert rate == RATE and measured == pytest.approx(snr, abs=0.5)


def test_gain_scales_the_samples(speech):
    quiet, _ = degrade_samples(speech, RATE, "gain:-20")
    np.testing.assert_allclose(quiet, speech * 0.1, atol=1e-6)


def test_the_telephone_keeps_300_to_3400_hz_at_8_khz(rng):
    broadband = (0.1 * rng.standard_normal(2 * RATE)).astype(np.float32)
    phone, rate = degrade_samples(broadband, RATE, "telephone")
    assert rate == 8000 and len(phone) == 2 * 8000
    inside = band_energy(phone, rate, 500, 3000)
    assert band_energy(phone, rate, 0, 150) < 0.01 * inside
    assert band_energy(phone, rate, 3800, 4000) < 0.01 * inside


def test_reverberation_spreads_a_click_over_the_decay_time():
    click = np.zeros(RATE, np.float32)
    click[1000] = 0.5
    wet, _ = degrade_samples(click, RATE, "reverb:0.5", seed=2)
    energy = np.cumsum(wet[1000:].astype(np.float64) ** 2)
    # A 0.5 s decay: a fair share of the energy arrives after 50 ms, next to none after 0.6 s.
    assert 0.1 < 1 - energy[800] / energy[-1] < 0.9
    assert 1 - energy[9600] / energy[-1] < 0.01


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_every_codec_round_trips_to_the_same_length(speech, codec):
    coded, rate = degrade_samples(speech, RATE, f"codec:{codec}")
    expected_rate = CODECS[codec][2] or RATE
    assert rate == expected_rate and abs(len(coded) - len(speech) * rate / RATE) <= 1
    assert np.isfinite(coded).all() and np.abs(coded).max() > 0.01


def test_a_clip_above_48_khz_is_brought_down_before_its_steps(tmp_path):
    """libvorbis crashed the process from 250 kHz, and a room's echo at a rate a header may
    claim (2 GHz) needed gigabytes: in a subprocess, so a crash fails this test alone."""
    import subprocess
    import sys

    script = (
        "import numpy as np; from udfs.degrade import degrade_samples\n"
        "y = 0.3 * np.sin(2 * np.pi * 150 * np.arange(2 * 384000) / 384000)\n"
        "for codec in ('vorbis', 'mp3'):\n"
        "    coded, rate = degrade_samples(y, 384000, 'codec:' + codec)\n"
        "    assert rate == 48000 and abs(len(coded) - 96000) <= 1, (codec, rate, len(coded))\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    with pytest.raises(AudioError, match="shorter than one sample at 48000 Hz"):
        degrade_samples(np.zeros(20000), 2**31 - 1, "reverb:2")
    coded, rate = degrade_samples(np.zeros(20000), 10**8, "reverb:2")
    assert rate == 48000 and len(coded) < 20


def test_crop_keeps_the_middle_of_the_speech(speech):
    cropped, _ = degrade_samples(speech, RATE, "crop:1.5")
    assert len(cropped) == int(1.5 * RATE)


def test_babble_uses_the_background_when_given(speech, rng):
    background = (0.2 * rng.standard_normal(RATE // 2)).astype(np.float32)
    with_background, _ = degrade_samples(speech, RATE, "babble:0", seed=3, background=background)
    synthetic, _ = degrade_samples(speech, RATE, "babble:0", seed=3)
    assert not np.allclose(with_background, synthetic)
    added = with_background.astype(np.float64) - speech
    assert 10 * np.log10(loud_power(speech) / np.mean(added**2)) == pytest.approx(0, abs=0.5)


def test_a_degraded_clip_is_ordinary_audio_for_the_features(speech):
    y, rate = degrade_samples(speech, RATE, "telephone+noise:10", seed=4)
    data = encode_wav(y, rate)
    decoded, decoded_rate = sf.read(io.BytesIO(data), dtype="float32")
    assert decoded_rate == 8000 and len(decoded) == len(y)
    features = mfcc_features(decoded, decoded_rate)
    assert np.isfinite(features).all() and features.shape[0] == 43


def test_steps_apply_left_to_right():
    assert [name for name, _ in parse_condition("telephone+noise:5+gain:-3")] == [
        "telephone",
        "noise",
        "gain",
    ]
