"""Generated long recordings with known stretches of speech, noise and silence.

"Speech" is a harmonic tone with vibrato and a syllable-rate envelope that never drops more
than 12 dB below its peak, with 10 ms fades, so its loud stretch starts and ends where it is
placed.  "Noise" is a white-noise burst as loud as the speech: loud, but not periodic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


def speech_like(
    rng: np.random.Generator, seconds: float, *, sample_rate: int = SAMPLE_RATE, f0: float = 150.0
) -> np.ndarray:
    """A voiced stretch [shape=(n,), float32], peak about 0.4, loud from its first to last
    sample."""
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 4.0 * t))) / sample_rate
    tone = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 10))
    envelope = 0.625 + 0.375 * np.sin(2 * np.pi * 3.5 * t + rng.uniform(0, 2 * np.pi))
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * sample_rate))
    y = tone * envelope * fade
    return (0.4 * y / np.max(np.abs(y))).astype(np.float32)


def noise_burst(
    rng: np.random.Generator, seconds: float, *, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    return (0.12 * rng.standard_normal(int(round(seconds * sample_rate)))).astype(np.float32)


def silence(seconds: float, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)


def compose(
    rng: np.random.Generator, plan: list[tuple[str, float]], *, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Samples of ``plan`` (("speech" | "noise" | "silence", seconds) in order) and the
    (start_s, end_s) of its speech stretches."""
    parts, speech, at = [], [], 0.0
    for kind, seconds in plan:
        if kind == "speech":
            part = speech_like(rng, seconds, sample_rate=sample_rate, f0=rng.uniform(110, 220))
            speech.append((at, at + len(part) / sample_rate))
        elif kind == "noise":
            part = noise_burst(rng, seconds, sample_rate=sample_rate)
        else:
            part = silence(seconds, sample_rate=sample_rate)
        parts.append(part)
        at += len(part) / sample_rate
    return np.concatenate(parts), speech


def write_plan_in_blocks(
    path: Path,
    rng: np.random.Generator,
    plan: list[tuple[str, float]],
    *,
    sample_rate: int = SAMPLE_RATE,
    format: str = "FLAC",
) -> list[tuple[float, float]]:
    """Write a long ``plan`` stretch by stretch (never whole in memory); its speech stretches."""
    speech, at = [], 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(
        str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format=format
    ) as out:
        for kind, seconds in plan:
            if kind == "silence":
                for _ in range(int(seconds // 60)):
                    out.write(silence(60, sample_rate=sample_rate))
                part = silence(seconds % 60, sample_rate=sample_rate)
            else:
                part, stretches = compose(rng, [(kind, seconds)], sample_rate=sample_rate)
                speech += [(at + a, at + b) for a, b in stretches]
            out.write(part)
            at += seconds
    return speech
