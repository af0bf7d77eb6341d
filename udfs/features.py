"""MFCC features: the one implementation used by the ``mfcc`` UDF and by the trainer.

A clip becomes a fixed-size matrix in four steps:

1. mix to mono (mean of channels) and resample to ``sample_rate`` (soxr, high quality);
2. trim leading and trailing silence quieter than ``trim_top_db`` below the peak;
3. centre the speech in a window of exactly ``clip_seconds`` (crop the middle of
   longer speech, pad shorter speech with zeros on both sides);
4. MFCC: power STFT (``n_fft``, Hann window of ``win_length``, hop ``hop_length``,
   centred frames) -> ``n_mels`` mel bands over [``fmin``, ``fmax``] Hz (Slaney) ->
   dB (10*log10, floor 1e-10, values below peak - 80 dB clamped,
   librosa's default) -> DCT-II (ortho) -> the first ``n_mfcc`` coefficients.

The result has shape ``(n_mfcc, n_frames)`` with ``n_frames = 1 + clip_samples // hop_length``.
SQL sees it flattened row-major (coefficient by coefficient) as ``array<float>``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import librosa
import numpy as np


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    clip_seconds: float = 3.0
    trim_top_db: float = 30.0
    n_mfcc: int = 40
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 20.0
    fmax: float = 8000.0

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return 1 + self.clip_samples // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_mfcc, self.n_frames)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FeatureConfig":
        return cls(**values)


DEFAULT_FEATURES = FeatureConfig()


def to_mono(y: np.ndarray) -> np.ndarray:
    """Mean of the channels of ``y`` [shape=(channels, frames) or (frames,)]."""
    return y if y.ndim == 1 else y.mean(axis=0)


def canonical_clip(y: np.ndarray, sample_rate: int, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Steps 1-3: mono, resampled, silence-trimmed, centred in a fixed window.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, frames) or (frames,), dtype=float]
    sample_rate : int
        Samples per second of ``y``.

    Returns
    -------
    np.ndarray [shape=(config.clip_samples,), dtype=float32]
    """
    mono = np.asarray(to_mono(y), dtype=np.float32)
    if sample_rate != config.sample_rate:
        mono = librosa.resample(mono, orig_sr=sample_rate, target_sr=config.sample_rate, res_type="soxr_hq")
    if mono.size and np.any(mono):
        _, (start, end) = librosa.effects.trim(
            mono, top_db=config.trim_top_db, frame_length=config.win_length, hop_length=config.hop_length
        )
        mono = mono[start:end]
    n = config.clip_samples
    if mono.size >= n:
        offset = (mono.size - n) // 2
        return np.ascontiguousarray(mono[offset : offset + n], dtype=np.float32)
    before = (n - mono.size) // 2
    return np.pad(mono, (before, n - mono.size - before)).astype(np.float32)


def mfcc_matrix(clip: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Step 4: the MFCC matrix of a canonical clip.

    Parameters
    ----------
    clip : np.ndarray [shape=(config.clip_samples,)]
        Output of :func:`canonical_clip`.

    Returns
    -------
    np.ndarray [shape=(config.n_mfcc, config.n_frames), dtype=float32]
        Cepstral coefficients (dB scale), coefficient by row.
    """
    mfcc = librosa.feature.mfcc(
        y=np.asarray(clip, dtype=np.float32),
        sr=config.sample_rate,
        n_mfcc=config.n_mfcc,
        n_fft=config.n_fft,
        win_length=config.win_length,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        center=True,
        window="hann",
        htk=False,
        power=2.0,
        dct_type=2,
        norm="ortho",
    )
    return mfcc.astype(np.float32)


def mfcc_features(y: np.ndarray, sample_rate: int, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """The model's input for decoded samples: :func:`canonical_clip` then :func:`mfcc_matrix`.

    Returns
    -------
    np.ndarray [shape=config.shape, dtype=float32]
    """
    return mfcc_matrix(canonical_clip(y, sample_rate, config=config), config=config)
