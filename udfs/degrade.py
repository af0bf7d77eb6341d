"""Recording conditions applied to a clip: what phones, codecs, rooms and noise do to speech.

The ``degrade`` SQL function and the training views use this to make the model hear speech as
users record it, and evaluation uses it to measure how an answer holds under each condition.
The result is ordinary encoded audio, so the features of a degraded clip are computed by the
one feature implementation (:func:`udfs.features.mfcc_features`) like any other clip.

A condition is a ``+``-separated list of steps applied left to right, each ``name`` or
``name:value``; a value written ``lo..hi`` is drawn uniformly from that range with the seed:

==================  =========================================================================
``clean``           nothing
``gain:DB``         louder (positive) or quieter by DB decibels; samples clip at full scale
``noise:SNR``       pink noise at SNR dB below the speech (speech power of the loud frames)
``babble:SNR``      the ``background`` clip (looped), or else a synthetic crowd of voices, at SNR
``reverb:T60``      a room whose reverberation decays by 60 dB in T60 seconds
``telephone``       a phone line: 300-3400 Hz, 8 kHz, G.711 mu-law
``codec:NAME``      through a lossy codec: ``mulaw``, ``gsm`` (8 kHz), ``mp3``, ``opus``, ``vorbis``
``crop:SECONDS``    only SECONDS of the speech, from its middle
==================  =========================================================================

Everything is seeded: the same clip, condition and seed give the same bytes.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass

import numpy as np
import scipy.signal
import soundfile as sf
import soxr

from udfs.errors import AudioError

#: Codec name -> (libsndfile container, subtype, sample rate it runs at or None: the clip's).
CODECS: dict[str, tuple[str, str, int | None]] = {
    "mulaw": ("WAV", "ULAW", 8000),
    "gsm": ("WAV", "GSM610", 8000),
    "mp3": ("MP3", "MPEG_LAYER_III", None),
    "opus": ("OGG", "OPUS", 16000),
    "vorbis": ("OGG", "VORBIS", None),
}
#: Steps and whether they take a value.
STEPS = {
    "clean": False,
    "gain": True,
    "noise": True,
    "babble": True,
    "reverb": True,
    "telephone": False,
    "codec": True,
    "crop": True,
}
#: Allowed values of the numeric steps (inclusive), so a typo fails rather than deafens.
RANGES = {
    "gain": (-60.0, 40.0),
    "noise": (-20.0, 60.0),
    "babble": (-20.0, 60.0),
    "reverb": (0.05, 5.0),
    "crop": (0.1, 600.0),
}
#: A clip above this rate is brought down to it first: speech needs far less, and at extreme
#: rates codecs fail (libvorbis crashes the process from 250 kHz) or a room's echo needs
#: gigabytes (a file may claim 2 GHz).
MAX_RATE = 48000
#: Telephone band edges (Hz), as ITU-T G.712's nominal band.
TELEPHONE_BAND = (300.0, 3400.0)
_STEP = re.compile(r"^([a-z]+)(?::(.+))?$")


@dataclass(frozen=True)
class Step:
    name: str
    value: float | str | None = None


def parse_condition(condition: str) -> list[tuple[str, str | None]]:
    """The steps of a condition, unevaluated: ``[(name, value text or None), ...]``.

    Raises
    ------
    AudioError
        Naming the step that is unknown, lacks a value, or has one it should not.
    """
    if not isinstance(condition, str) or not condition.strip():
        raise AudioError("condition must be a non-empty string such as 'telephone+noise:10'")
    steps = []
    for text in condition.strip().lower().split("+"):
        match = _STEP.match(text.strip())
        if not match or match.group(1) not in STEPS:
            raise AudioError(
                f"unknown condition step {text.strip()!r}; expected one of {', '.join(STEPS)}"
            )
        name, value = match.group(1), match.group(2)
        if STEPS[name] and value is None:
            raise AudioError(f"condition step {name!r} needs a value, e.g. '{name}:10'")
        if not STEPS[name] and value is not None:
            raise AudioError(f"condition step {name!r} takes no value")
        steps.append((name, value))
    return steps


def resolve_condition(condition: str, seed: int) -> list[Step]:
    """The steps of a condition with every ``lo..hi`` range drawn from ``seed``."""
    parsed = parse_condition(condition)
    rng = np.random.default_rng([abs(int(seed)), zlib.crc32(condition.encode())])
    steps = []
    for name, value in parsed:
        if name == "codec":
            if value not in CODECS:
                raise AudioError(f"unknown codec {value!r}; expected one of {', '.join(CODECS)}")
            steps.append(Step(name, value))
        elif value is None:
            steps.append(Step(name))
        else:
            steps.append(Step(name, _number(name, value, rng)))
    return steps


def _number(name: str, text: str, rng: np.random.Generator) -> float:
    low, _, high = text.partition("..")
    try:
        low_value = float(low)
        high_value = float(high) if high else low_value
    except ValueError:
        raise AudioError(
            f"condition step {name!r} needs a number or a range lo..hi, got {text!r}"
        ) from None
    bottom, top = RANGES[name]
    if not (bottom <= low_value <= high_value <= top):
        raise AudioError(
            f"condition step {name!r} must lie in [{bottom:g}, {top:g}] (lo <= hi), got {text!r}"
        )
    return float(rng.uniform(low_value, high_value)) if high else low_value


def degrade_samples(
    y: np.ndarray,
    sample_rate: int,
    condition: str,
    *,
    seed: int = 0,
    background: np.ndarray | None = None,
    background_rate: int | None = None,
) -> tuple[np.ndarray, int]:
    """Apply a recording condition to mono samples.

    Parameters
    ----------
    y : np.ndarray [shape=(n,), dtype=float32]
        Mono samples in [-1, 1].
    sample_rate : int
    condition : str
        Steps as in the module docstring, e.g. ``"telephone+noise:5..20"``.
    seed : int, keyword-only
        Seeds the ranges and the random noise, rooms and crowds.
    background : np.ndarray [shape=(m,)] or None, keyword-only
        Babble source (other speech); None: a synthetic crowd.
    background_rate : int or None, keyword-only
        Its sample rate; None: ``sample_rate``.

    Returns
    -------
    (np.ndarray [shape=(n',), dtype=float32], int)
        The samples (clipped to [-1, 1]) and their rate (8000 after ``telephone`` or an
        8 kHz codec; at most :data:`MAX_RATE`).
    """
    rng = np.random.default_rng([abs(int(seed)), 0xDE9])
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    background_rate = background_rate or sample_rate
    if sample_rate > MAX_RATE:
        y = soxr.resample(y, sample_rate, MAX_RATE, quality="HQ")
        sample_rate = MAX_RATE
        if not len(y):
            raise AudioError(f"audio shorter than one sample at {MAX_RATE} Hz")
    if background is not None and background_rate != sample_rate:
        background = soxr.resample(background, background_rate, sample_rate)
    for step in resolve_condition(condition, seed):
        if step.name == "gain":
            y = y * 10.0 ** (step.value / 20.0)
        elif step.name == "noise":
            y = _mix(y, _pink_noise(len(y), rng), step.value, sample_rate)
        elif step.name == "babble":
            crowd = (
                _loop(np.asarray(background, dtype=np.float64).reshape(-1), len(y), rng)
                if background is not None and len(background)
                else _synthetic_babble(len(y), sample_rate, rng)
            )
            y = _mix(y, crowd, step.value, sample_rate)
        elif step.name == "reverb":
            y = _reverberate(y, sample_rate, step.value, rng)
        elif step.name == "telephone":
            y, sample_rate = _telephone(y, sample_rate)
        elif step.name == "codec":
            y, sample_rate = _through_codec(y, sample_rate, step.value)
        elif step.name == "crop":
            y = _crop_speech(y, sample_rate, step.value)
        y = np.clip(y, -1.0, 1.0)
    return y.astype(np.float32), sample_rate


def encode_wav(y: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV bytes of mono float samples."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(y, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _speech_power(y: np.ndarray, sample_rate: int) -> float:
    """Mean power of the loud frames (within 30 dB of the loudest 20 ms frame)."""
    frame = max(1, sample_rate // 50)
    usable = len(y) // frame * frame
    if usable == 0:
        return float(np.mean(y**2)) if len(y) else 0.0
    power = np.mean(y[:usable].reshape(-1, frame) ** 2, axis=1)
    loud = power[power >= power.max() * 1e-3]
    return float(loud.mean()) if len(loud) else 0.0


def _mix(y: np.ndarray, noise: np.ndarray, snr_db: float, sample_rate: int) -> np.ndarray:
    speech = _speech_power(y, sample_rate)
    noise_power = float(np.mean(noise**2))
    if speech <= 0.0 or noise_power <= 0.0:
        return y
    return y + noise * np.sqrt(speech / noise_power * 10.0 ** (-snr_db / 10.0))


def _pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Noise with power falling 3 dB an octave, like most room and street noise."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    scale = np.ones(len(spectrum))
    scale[1:] = 1.0 / np.sqrt(np.arange(1, len(spectrum)))
    return np.fft.irfft(spectrum * scale, n=n)


def _loop(source: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    start = int(rng.integers(0, len(source)))
    return np.resize(np.roll(source, -start), n)


def _synthetic_babble(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Six talkers' worth of voiced, syllabic, formant-shaped sound: speech-like interference."""
    t = np.arange(n) / sample_rate
    crowd = np.zeros(n)
    for _ in range(6):
        f0 = rng.uniform(90.0, 260.0) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 12))
        syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6)), 0, None)
        crowd += voice * syllables
    # Shape like speech: emphasise 300-3000 Hz.
    sos = scipy.signal.butter(2, (300.0, min(3000.0, 0.45 * sample_rate)), "bandpass",
                              fs=sample_rate, output="sos")  # fmt: skip
    return scipy.signal.sosfilt(sos, crowd)


def _reverberate(
    y: np.ndarray, sample_rate: int, t60: float, rng: np.random.Generator
) -> np.ndarray:
    """Convolve with a synthetic room response: the direct sound, then decaying diffuse noise."""
    length = int(min(t60, 2.0) * sample_rate)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * t / t60)  # -60 dB at t60
    tail[: int(0.002 * sample_rate)] = 0.0  # 2 ms before the first reflections
    response = tail / np.sqrt(np.sum(tail**2))  # diffuse energy equal to the direct sound
    response[0] = 1.0
    wet = scipy.signal.fftconvolve(y, response)[: len(y)]
    peak = np.max(np.abs(wet))
    original = np.max(np.abs(y))
    return wet * (original / peak) if peak > 0 and original > 0 else wet


def _telephone(y: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    low, high = TELEPHONE_BAND
    sos = scipy.signal.butter(4, (low, min(high, 0.45 * sample_rate)), "bandpass",
                              fs=sample_rate, output="sos")  # fmt: skip
    return _through_codec(scipy.signal.sosfilt(sos, y), sample_rate, "mulaw")


def _through_codec(y: np.ndarray, sample_rate: int, codec: str) -> tuple[np.ndarray, int]:
    container, subtype, codec_rate = CODECS[codec]
    if codec_rate and codec_rate != sample_rate:
        y = soxr.resample(y, sample_rate, codec_rate, quality="HQ")
        sample_rate = codec_rate
    buffer = io.BytesIO()
    try:
        sf.write(buffer, np.clip(y, -1.0, 1.0), sample_rate, format=container, subtype=subtype)
        buffer.seek(0)
        decoded, rate = sf.read(buffer, dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"codec {codec} failed at {sample_rate} Hz: {exc}") from None
    # Codecs pad or trim a little; keep the input's length so conditions compose.
    decoded = decoded[:, 0]
    return np.resize(decoded, len(y)) if len(decoded) else decoded, rate


def _crop_speech(y: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """The middle ``seconds`` of the speech, trimmed of silence by the features' own rule."""
    from udfs.features import speech_bounds

    start, end = speech_bounds(y.astype(np.float32)) if np.any(y) else (0, len(y))
    keep = int(seconds * sample_rate)
    if end - start <= keep:
        return y[start:end]
    middle = (start + end) // 2
    return y[middle - keep // 2 : middle - keep // 2 + keep]
