"""Synthetic speech-like audio for the tests: the suite needs no ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def voiced_signal(
    rng: np.random.Generator,
    *,
    sample_rate: int,
    seconds: float,
    f0: float = 140.0,
    channels: int = 1,
    lead_silence_s: float = 0.4,
) -> np.ndarray:
    """A harmonic tone with a syllable-like envelope, silence before and after.

    Returns
    -------
    np.ndarray [shape=(frames, channels), dtype=float32], peak about 0.5
    """
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    vibrato = 1.0 + 0.03 * np.sin(2 * np.pi * 5.0 * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 3.0 * t)) * np.hanning(n)
    voiced = harmonics * envelope + 0.003 * rng.standard_normal(n)
    lead = int(lead_silence_s * sample_rate)
    mono = np.concatenate([np.zeros(lead), voiced, np.zeros(lead)])
    mono = 0.5 * mono / np.max(np.abs(mono))
    gains = np.linspace(1.0, 0.6, channels)
    return (mono[:, None] * gains[None, :]).astype(np.float32)


def write_clip(
    path: Path, samples: np.ndarray, sample_rate: int, *, subtype: str, format: str | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype, format=format)
    return path


#: (file name, sample rate, channels, subtype, libsndfile format)
VARIANTS = [
    ("pcm8_8k_mono.wav", 8000, 1, "PCM_U8", "WAV"),
    ("pcm16_16k_mono.wav", 16000, 1, "PCM_16", "WAV"),
    ("pcm24_44k_stereo.wav", 44100, 2, "PCM_24", "WAV"),
    ("pcm32_48k_stereo.wav", 48000, 2, "PCM_32", "WAV"),
    ("float_22k_mono.wav", 22050, 1, "FLOAT", "WAV"),
    ("pcm16_96k_6ch.wav", 96000, 6, "PCM_16", "WAV"),
    ("clip_16k.flac", 16000, 1, "PCM_16", "FLAC"),
    ("clip_48k.ogg", 48000, 2, "VORBIS", "OGG"),
]


def write_variants(
    directory: Path, rng: np.random.Generator, *, seconds: float = 1.6
) -> dict[str, Path]:
    paths = {}
    for name, rate, channels, subtype, fmt in VARIANTS:
        samples = voiced_signal(rng, sample_rate=rate, seconds=seconds, channels=channels)
        paths[name] = write_clip(directory / name, samples, rate, subtype=subtype, format=fmt)
    return paths


def write_bad_inputs(directory: Path, rng: np.random.Generator) -> dict[str, Path]:
    """Files that are not usable audio, each named for what is wrong with it."""
    directory.mkdir(parents=True, exist_ok=True)
    good = voiced_signal(rng, sample_rate=16000, seconds=1.0)
    paths = {}
    paths["empty.wav"] = directory / "empty.wav"
    paths["empty.wav"].write_bytes(b"")
    paths["header_only.wav"] = write_clip(
        directory / "header_only.wav", np.zeros((0, 1), np.float32), 16000, subtype="PCM_16"
    )
    full = write_clip(directory / "full.tmp.wav", good, 16000, subtype="PCM_16").read_bytes()
    (directory / "full.tmp.wav").unlink()
    paths["truncated_header.wav"] = directory / "truncated_header.wav"
    paths["truncated_header.wav"].write_bytes(full[:30])
    paths["random.wav"] = directory / "random.wav"
    paths["random.wav"].write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    paths["text.wav"] = directory / "text.wav"
    paths["text.wav"].write_text("this is not audio, just a renamed text file\n" * 20)
    # A header claiming 1 Hz: each byte would be seconds of audio to resample and process.
    paths["one_hertz.wav"] = write_clip(
        directory / "one_hertz.wav", good[:4000], 1, subtype="PCM_16"
    )
    paths["a_directory.wav"] = directory / "a_directory.wav"
    paths["a_directory.wav"].mkdir(exist_ok=True)
    return paths
