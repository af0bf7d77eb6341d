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

With ``pitch=True`` three prosody rows follow the coefficients (:func:`pitch_rows`, on the
same canonical clip and frames): voiced flag, log2 F0 relative to the clip's median voiced
F0 (the intonation contour, in octaves, free of the speaker's register) and log2 (F0 / 200 Hz);
the shape is then ``(n_mfcc + 3, n_frames)``.  MFCCs from 64 mel bands keep the spectral
envelope but hardly any of the harmonics that carry the pitch.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import librosa
import numpy as np
import scipy.fft
import scipy.signal


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
    #: Prosody rows after the coefficients (see :func:`pitch_rows`).
    pitch: bool = True
    pitch_fmin: float = 70.0
    pitch_fmax: float = 450.0
    pitch_frame: int = 640

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return 1 + self.clip_samples // self.hop_length

    @property
    def prosody_rows(self) -> int:
        """Rows after the coefficients: :data:`PITCH_ROWS` with ``pitch``, else none."""
        return PITCH_ROWS if self.pitch else 0

    @property
    def n_rows(self) -> int:
        """Rows of the feature matrix: the coefficients, then the prosody rows if any."""
        return self.n_mfcc + self.prosody_rows

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_frames)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FeatureConfig:
        return cls(**values)


#: Number of prosody rows a ``pitch=True`` configuration adds.
PITCH_ROWS = 3
#: Voiced frames: no quieter than this far below the clip's loudest frame (dB).
VOICED_TOP_DB = 30.0
#: log2 F0 of the absolute pitch row is taken relative to this frequency (Hz).
PITCH_REFERENCE_HZ = 200.0

DEFAULT_FEATURES = FeatureConfig()


def to_mono(y: np.ndarray) -> np.ndarray:
    """Mean of the channels of ``y`` [shape=(channels, frames) or (frames,)]."""
    return y if y.ndim == 1 else y.mean(axis=0)


def frame_mean_square(y: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Mean square of ``y`` in centred frames of ``win_length`` every ``hop_length`` samples.

    ``librosa.feature.rms(y, frame_length=win_length, hop_length=hop_length) ** 2`` (zero
    padding), from one cumulative sum instead of a strided frame matrix.

    Returns
    -------
    np.ndarray [shape=(1 + len(y) // hop_length,), dtype=float64]
    """
    frame, hop = config.win_length, config.hop_length
    squares = np.square(np.pad(y.astype(np.float64), frame // 2))
    cumulative = np.concatenate(([0.0], np.cumsum(squares)))
    n_frames = 1 + (squares.size - frame) // hop
    starts = np.arange(n_frames) * hop
    return (cumulative[starts + frame] - cumulative[starts]) / frame


def speech_bounds(y: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> tuple[int, int]:
    """Sample range ``[start, end)`` of ``y`` between the first and last non-silent frame.

    The rule of ``librosa.effects.trim`` (frames of ``win_length`` every ``hop_length``
    samples, centred with zero padding; a frame is silent when its RMS is more than
    ``trim_top_db`` below the loudest frame's), computed with one cumulative sum
    instead of a strided frame matrix.

    Parameters
    ----------
    y : np.ndarray [shape=(n,), dtype=float]
        Mono samples, not all zero.

    Returns
    -------
    (start, end) : tuple of int
        ``0 <= start < end <= n``; ``(0, 0)`` if every frame is silent.
    """
    hop = config.hop_length
    mean_square = frame_mean_square(y, config=config)
    # librosa's amplitude_to_db(rms, ref=max, amin=1e-5) > -top_db, on squared values.
    floor = 1e-10
    threshold = max(floor, float(mean_square.max())) * 10.0 ** (-config.trim_top_db / 10.0)
    loud = np.flatnonzero(np.maximum(mean_square, floor) > threshold)
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * hop), min(y.size, int((loud[-1] + 1) * hop))


def mono_at_rate(
    y: np.ndarray, sample_rate: int, *, config: FeatureConfig = DEFAULT_FEATURES
) -> np.ndarray:
    """Step 1: mono (mean of channels), resampled to ``config.sample_rate`` (soxr, high quality).

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    mono = np.asarray(to_mono(y), dtype=np.float32)
    if sample_rate != config.sample_rate:
        mono = librosa.resample(
            mono, orig_sr=sample_rate, target_sr=config.sample_rate, res_type="soxr_hq"
        )
    return mono


def centred_speech(mono: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Steps 2-3: trim silence (:func:`speech_bounds`) and centre in ``clip_samples``.

    Parameters
    ----------
    mono : np.ndarray [shape=(n,), dtype=float32]
        Output of :func:`mono_at_rate`.

    Returns
    -------
    np.ndarray [shape=(config.clip_samples,), dtype=float32]
    """
    if mono.size and np.any(mono):
        start, end = speech_bounds(mono, config=config)
        mono = mono[start:end]
    n = config.clip_samples
    if mono.size >= n:
        offset = (mono.size - n) // 2
        return np.ascontiguousarray(mono[offset : offset + n], dtype=np.float32)
    before = (n - mono.size) // 2
    return np.pad(mono, (before, n - mono.size - before)).astype(np.float32)


def canonical_clip(
    y: np.ndarray, sample_rate: int, *, config: FeatureConfig = DEFAULT_FEATURES
) -> np.ndarray:
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
    return centred_speech(mono_at_rate(y, sample_rate, config=config), config=config)


@functools.lru_cache(maxsize=8)
def _mel_basis(config: FeatureConfig) -> np.ndarray:
    """Slaney mel filterbank [shape=(n_fft // 2 + 1, n_mels), dtype=float32], built once per
    config."""
    basis = librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        htk=False,
        norm="slaney",
        dtype=np.float32,
    )
    return np.ascontiguousarray(basis.T)


@functools.lru_cache(maxsize=8)
def _stft_window(config: FeatureConfig) -> np.ndarray:
    """Periodic Hann window of ``win_length`` centred in ``n_fft`` zeros
    [shape=(n_fft,), dtype=float32]."""
    window = scipy.signal.get_window("hann", config.win_length, fftbins=True)
    left = (config.n_fft - config.win_length) // 2
    return np.pad(window, (left, config.n_fft - config.win_length - left)).astype(np.float32)


def mfcc_matrix(clip: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Step 4: the MFCC matrix of a canonical clip.

    Written out with numpy/scipy rather than ``librosa.feature.mfcc``: the filterbank
    and window are built once per configuration and the mel projection is one
    float32 matrix product, which makes this ~20x faster per clip than the librosa
    call (whose filterbank is rebuilt and whose projection goes through ``einsum``)
    while computing the same values (librosa's defaults: centred frames padded with
    zeros, periodic Hann, power 2, Slaney mel, ``power_to_db`` with ref 1, amin
    1e-10, top_db 80, orthonormal DCT-II).

    Parameters
    ----------
    clip : np.ndarray [shape=(config.clip_samples,)]
        Output of :func:`canonical_clip`.

    Returns
    -------
    np.ndarray [shape=(config.n_mfcc, config.n_frames), dtype=float32]
        Cepstral coefficients (dB scale), coefficient by row.
    """
    return cepstra_from_mel_db(mel_db_frames(clip, config=config), config=config)


def mel_db_frames(samples: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Mel power in dB of centred frames of any stretch of samples, before the clip's 80 dB floor.

    The first half of :func:`mfcc_matrix`; a long recording computes it once and slices the
    frames of each window from it (``udfs/segments.py``).

    Returns
    -------
    np.ndarray [shape=(1 + len(samples) // hop_length, n_mels), dtype=float32]
        ``10 log10(max(mel power, 1e-10))``, frame by row.
    """
    samples = np.asarray(samples, dtype=np.float32)
    pad = config.n_fft // 2
    padded = np.pad(samples, pad, mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, config.n_fft)[:: config.hop_length]
    spectrum = scipy.fft.rfft(frames * _stft_window(config), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = power @ _mel_basis(config)
    return 10.0 * np.log10(np.maximum(mel, 1e-10))


def cepstra_from_mel_db(db: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """The second half of :func:`mfcc_matrix`: floor at the loudest value minus 80 dB, DCT-II.

    Parameters
    ----------
    db : np.ndarray [shape=(..., n_frames, n_mels)]
        :func:`mel_db_frames` of one clip, or a stack of windows (each floored at its own
        loudest value).

    Returns
    -------
    np.ndarray [shape=(..., n_mfcc, n_frames), dtype=float32]
    """
    loudest = db.max(axis=(-2, -1), keepdims=True)
    db = np.maximum(db, loudest - 80.0)
    cepstrum = scipy.fft.dct(db, type=2, norm="ortho", axis=-1)[..., : config.n_mfcc]
    return np.ascontiguousarray(np.swapaxes(cepstrum, -1, -2), dtype=np.float32)


#: YIN's absolute threshold on the cumulative mean normalised difference (librosa's default).
YIN_THRESHOLD = 0.1


def yin_f0(
    samples: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES, only: np.ndarray | None = None
) -> np.ndarray:
    """F0 in Hz of each frame: ``librosa.yin(samples, fmin=config.pitch_fmin,
    fmax=config.pitch_fmax, sr=config.sample_rate, frame_length=config.pitch_frame,
    hop_length=config.hop_length, center=True)``.

    The same YIN steps and options (de Cheveigne & Kawahara 2002: difference function,
    cumulative mean normalisation, the first local minimum below :data:`YIN_THRESHOLD`
    or else the global minimum, parabolic refinement) written for this one case: frames are
    contiguous rows (one FFT pair along the fast axis), no generic stencils.  The values
    agree with librosa's to float32 rounding (``tests/test_features.py``).

    ``only``, a boolean mask over the frames, computes just those (each frame's F0 depends on
    that frame alone); the others are NaN.

    Returns
    -------
    np.ndarray [shape=(1 + len(samples) // hop_length,), dtype=float32]
    """
    return yin_frames(samples, config=config, only=only)[0]


def yin_frames(
    samples: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES, only: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`yin_f0` and each frame's aperiodicity: the normalised difference at the chosen lag.

    The aperiodicity is near 0 for a periodic frame (a voiced vowel, a tone) and near 1 for
    noise, whatever F0 YIN settles on; ``udfs/segments.py`` uses it to tell speech from noise.

    Returns
    -------
    f0, aperiodicity : np.ndarray [shape=(1 + len(samples) // hop_length,), dtype=float32]
        NaN outside ``only``.
    """
    frame = config.pitch_frame
    padded = np.pad(np.asarray(samples, dtype=np.float32), frame // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[:: config.hop_length]
    if only is None:
        return _yin_frames(frames, config)
    f0 = np.full(len(frames), np.nan, dtype=np.float32)
    aperiodicity = np.full(len(frames), np.nan, dtype=np.float32)
    if only.any():
        f0[only], aperiodicity[only] = _yin_frames(frames[only], config)
    return f0, aperiodicity


def _yin_frames(frames: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """:func:`yin_frames` of frames given as rows (float32, ``config.pitch_frame`` samples
    each)."""
    frame, sr = config.pitch_frame, config.sample_rate
    min_period = int(np.floor(sr / config.pitch_fmax))
    max_period = min(int(np.ceil(sr / config.pitch_fmin)), frame - 1)
    # Lags up to max_period only: zero padding to frame + max_period already keeps the circular
    # autocorrelation from wrapping onto them (librosa pads to 2 * frame - 1, for every lag).
    size = scipy.fft.next_fast_len(frame + max_period, real=True)
    spectrum = scipy.fft.rfft(frames, n=size, axis=-1)
    acf = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=size, axis=-1)[:, : max_period + 1]
    energy = np.cumsum(
        np.square(frames[:, :max_period]), axis=-1
    )  # energy[:, k - 1] = sum of x[0:k]^2
    # d(k) = 2 (r(0) - r(k)) - sum_{m<k} x(m)^2, for k = 1..max_period
    difference = 2 * (acf[:, :1] - acf[:, 1:]) - energy
    cumulative_mean = np.cumsum(difference, axis=-1) / np.arange(
        1, max_period + 1, dtype=np.float32
    )
    cmnd = difference[:, min_period - 1 :] / (
        cumulative_mean[:, min_period - 1 :] + np.finfo(np.float32).tiny
    )
    # Local minima: x[i] < x[i-1] and x[i] <= x[i+1]; the first lag against its right
    # neighbour only, the last against its left one only.
    left, centre, right = cmnd[:, :-2], cmnd[:, 1:-1], cmnd[:, 2:]
    trough = np.zeros(cmnd.shape, dtype=bool)
    trough[:, 1:-1] = (centre < left) & (centre <= right)
    trough[:, 0] = cmnd[:, 0] < cmnd[:, 1]
    trough[:, -1] = cmnd[:, -1] < cmnd[:, -2]
    below = trough & (cmnd < YIN_THRESHOLD)
    lowest = cmnd.argmin(axis=-1)
    lag = np.where(below.any(axis=-1), below.argmax(axis=-1), lowest)
    # Parabolic refinement at the chosen lag only (0 at either end of the range, or where the
    # vertex lies more than a lag away).
    rows = np.arange(len(lag))
    inner = (lag > 0) & (lag < cmnd.shape[1] - 1)
    at = np.clip(lag, 1, cmnd.shape[1] - 2)
    l, c, r = cmnd[rows, at - 1], cmnd[rows, at], cmnd[rows, at + 1]
    a, b = r + l - 2 * c, (r - l) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(inner & (np.abs(b) < np.abs(a)), -b / a, 0.0)
    period = min_period + lag + shift
    return (sr / period).astype(np.float32), c.astype(np.float32)


def pitch_rows(clip: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """The prosody rows of a canonical clip, on the MFCC's frames.

    F0 is YIN (:func:`yin_f0`, ``librosa.yin``'s values) over [``pitch_fmin``, ``pitch_fmax``] Hz
    in centred frames of ``pitch_frame`` samples every ``hop_length``.  A frame is loud when it is
    within :data:`VOICED_TOP_DB` of the clip's loudest frame (:func:`frame_mean_square`), and counts
    as voiced when it is loud and its F0 is not pinned to either end of the search range.  That
    flag is a loudness gate, not a periodicity test: loud noise passes it with some F0.

    Returns
    -------
    np.ndarray [shape=(config.prosody_rows, config.n_frames), dtype=float32]
        Voiced flag (0/1); log2 F0 minus the median log2 F0 of the voiced frames;
        log2 (F0 / :data:`PITCH_REFERENCE_HZ`).  0 on unvoiced frames, everything 0 for a
        silent clip.
    """
    samples = np.asarray(clip, dtype=np.float32)
    if not np.any(samples):
        return np.zeros((config.prosody_rows, config.n_frames), dtype=np.float32)
    mean_square = frame_mean_square(samples, config=config)
    # Quiet frames are unvoiced whatever their F0: YIN runs on the loud ones only (about half).
    f0 = yin_f0(samples, config=config, only=loud_frames(mean_square))
    return prosody_from_frames(mean_square, f0, config=config)


def loud_frames(mean_square: np.ndarray) -> np.ndarray:
    """Frames within :data:`VOICED_TOP_DB` of the loudest one along the last axis (bool)."""
    loudest = mean_square.max(axis=-1, keepdims=True)
    return mean_square > loudest * 10.0 ** (-VOICED_TOP_DB / 10.0)


def prosody_from_frames(
    mean_square: np.ndarray, f0: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES
) -> np.ndarray:
    """:func:`pitch_rows` from a clip's frame mean squares and F0 (needed on its loud frames).

    A long recording computes both once and passes each window's slice here
    (``udfs/segments.py``): loudness and the median stay relative to the window.

    Parameters
    ----------
    mean_square : np.ndarray [shape=(n_frames,)]
        :func:`frame_mean_square` of the clip.
    f0 : np.ndarray [shape=(n_frames,), dtype=float32]
        :func:`yin_f0` at least on :func:`loud_frames`, NaN or anything elsewhere.

    Returns
    -------
    np.ndarray [shape=(config.prosody_rows, n_frames), dtype=float32]
    """
    rows = np.zeros((config.prosody_rows, len(mean_square)), dtype=np.float32)
    loud = loud_frames(mean_square)
    with np.errstate(invalid="ignore"):
        voiced = loud & (f0 > config.pitch_fmin * 1.05) & (f0 < config.pitch_fmax * 0.95)
    if not voiced.any():
        return rows
    log_f0 = np.log2(np.where(voiced, f0, 1.0))
    rows[0] = voiced
    rows[1] = np.where(voiced, log_f0 - np.median(log_f0[voiced]), 0.0)
    rows[2] = np.where(voiced, log_f0 - np.log2(PITCH_REFERENCE_HZ), 0.0)
    return rows


def mfcc_features(
    y: np.ndarray, sample_rate: int, *, config: FeatureConfig = DEFAULT_FEATURES
) -> np.ndarray:
    """The model's input for decoded samples: :func:`canonical_clip`, :func:`mfcc_matrix`
    and, if ``config.pitch``, :func:`pitch_rows` below it.

    Returns
    -------
    np.ndarray [shape=config.shape, dtype=float32]
    """
    return canonical_features(canonical_clip(y, sample_rate, config=config), config=config)


def canonical_features(clip: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """:func:`mfcc_matrix` of a canonical clip and, if ``config.pitch``, :func:`pitch_rows` below.

    Returns
    -------
    np.ndarray [shape=config.shape, dtype=float32]
    """
    cepstra = mfcc_matrix(clip, config=config)
    if not config.pitch:
        return cepstra
    return np.concatenate([cepstra, pitch_rows(clip, config=config)])
