"""Emotion over time for recordings of any length: voice activity, windows, bounded memory.

A recording is read three times, in blocks, never whole:

1. **Levels.**  Mono, resampled to ``sample_rate`` block by block (soxr's streaming
   resampler), the mean square of the same centred frames as :func:`~udfs.features.speech_bounds`
   (``win_length`` every ``hop_length``).  Only a histogram of the frame levels is kept; its
   *reference* is the loudest level the recording holds for :data:`REFERENCE_SECONDS` in all,
   so that a click does not set it.
2. **Speech.**  The same frames again: a frame is loud when its level is within
   ``trim_top_db`` of the reference (the trim rule of ``mfcc``) and above
   :data:`SPEECH_FLOOR_DB`.  Loud runs closer than :data:`MAX_PAUSE_SECONDS` are merged into one
   region; regions shorter than :data:`MIN_SPEECH_SECONDS` are dropped.  Only the regions are
   kept.
3. **Windows.**  Each region is read back (seeking) and cut into windows of the model's
   ``clip_seconds`` every :data:`WINDOW_HOP_SECONDS`, the last one ending at the region's end.
   A region no longer than one window is one window, featurised exactly as ``mfcc`` featurises
   a clip of that speech (:func:`~udfs.features.mfcc_features`).  A longer region is read in
   chunks of up to :data:`CHUNK_WINDOWS` windows; each chunk's mel spectrogram, frame levels and
   YIN are computed once, and every window's features are sliced from them: its own 80 dB
   floor, its own loudness gate and its own median F0, so a window's features are those of
   :func:`~udfs.features.mfcc_features` on its samples except for the two frames at each edge
   (which see the neighbouring samples instead of zero padding) and the trim (none: the window
   lies in speech).

Each window answers for the stretch of speech nearest to its centre: the stretches tile the
region without overlap (boundaries half-way between neighbouring window centres), so the rows
of a recording add up to its speech time.  A stretch whose frames are mostly not periodic
(YIN aperiodicity, :data:`PERIODIC_MAX`; fewer than :data:`MIN_VOICED_SHARE` of its frames)
is noise, not speech, and gives no row.

Memory is bounded whatever the length: one block of :data:`BLOCK_SECONDS` of the file's own
samples (all channels) in passes 1-2, one chunk of at most
``(CHUNK_WINDOWS - 1) * WINDOW_HOP_SECONDS + clip_seconds`` seconds with its frame matrices in
pass 3, :data:`BATCH_WINDOWS` windows of features waiting for the model, and the list of
speech regions (two integers per region).  ``docs/long-recordings.md`` states the figure and
``tests/test_segments.py`` checks it on a two-hour file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr

from udfs.audio import (
    MAX_DECODE_SECONDS,
    MAX_SAMPLE_MAGNITUDE,
    checked_samples,
    decode_handle,
    open_audio,
    undecodable,
)
from udfs.features import (
    DEFAULT_FEATURES,
    FeatureConfig,
    canonical_features,
    centred_speech,
    cepstra_from_mel_db,
    frame_mean_square,
    loud_frames,
    mel_db_frames,
    mfcc_matrix,
    mono_at_rate,
    pitch_rows,
    prosody_from_frames,
    speech_bounds,
    yin_frames,
)
from udfs.labels import EMOTIONS

#: Seconds of the file's own samples decoded per step of the level passes.
BLOCK_SECONDS = 20.0
#: The reference level is the loudest level that at least this much of the recording reaches.
REFERENCE_SECONDS = 0.1
#: Frames quieter than this (dB relative to full scale, mean square) are never speech.
SPEECH_FLOOR_DB = -60.0
#: Pauses up to this long inside speech do not split a region.
MAX_PAUSE_SECONDS = 0.4
#: Loud regions shorter than this are dropped (clicks, knocks).
MIN_SPEECH_SECONDS = 0.25
#: Step between the windows of a region longer than the model's window.
WINDOW_HOP_SECONDS = 1.5
#: A frame is periodic (voiced) when its YIN aperiodicity is below this.
PERIODIC_MAX = 0.4
#: A stretch is speech when at least this share of its frames is loud and periodic.  Background
#: noise makes voiced frames less periodic and every frame of a stretch loud, and a noisy call
#: must still be answered: both limits let speech at 5 dB SNR through, while noise alone
#: (white, pink, brown) stays under them (docs/long-recordings.md).
MIN_VOICED_SHARE = 0.1
#: Windows of a long region featurised together (one STFT and one YIN per chunk).
CHUNK_WINDOWS = 16
#: Windows sent to the model in one call.
BATCH_WINDOWS = 64

#: Level histogram: bins of this many dB from LEVEL_MIN_DB (silence) to the level of the largest
#: sample decoded at all: a float file written in integer scale (peaks near 32768, +90 dBFS) is
#: as loud against its own noise as the same audio within +-1.
LEVEL_STEP_DB = 0.25
LEVEL_MIN_DB = -100.0
LEVEL_MAX_DB = 20.0 * math.log10(MAX_SAMPLE_MAGNITUDE)

EMOTION_SEGMENTS_DDL = (
    "start_s double, end_s double, emotion string, confidence double, "
    + ", ".join(f"{name} double" for name in EMOTIONS)
    + ", error string"
)

#: ``predict(features)`` -> probabilities: [shape=(n, rows, frames)] float32 -> [shape=(n, 8)].
Predict = Callable[[np.ndarray], np.ndarray]


class Segment(NamedTuple):
    """One analysed stretch of speech: seconds from the start of the recording, and the model's
    probabilities for the window centred on it."""

    start_s: float
    end_s: float
    probabilities: np.ndarray

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def row(self) -> tuple:
        """The ``emotion_segments`` row: times, label, confidence, one score per emotion, no
        error."""
        best = int(np.argmax(self.probabilities))
        return (
            self.start_s,
            self.end_s,
            EMOTIONS[best],
            float(self.probabilities[best]),
            *(float(p) for p in self.probabilities),
            None,
        )


def error_row(reason: str) -> tuple:
    """The one ``emotion_segments`` row of a recording that cannot be read: NULLs and the reason."""
    return (None,) * (4 + len(EMOTIONS)) + (reason,)


# --- reading -------------------------------------------------------------------------------


def _read(handle: sf.SoundFile, frames: int) -> np.ndarray:
    try:
        block = handle.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise undecodable(handle.format, exc) from None
    checked_samples(block)
    return block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]


def mono_blocks(
    handle: sf.SoundFile, *, config: FeatureConfig = DEFAULT_FEATURES
) -> Iterator[np.ndarray]:
    """The whole recording as mono float32 blocks at ``config.sample_rate``, from its start.

    Blocks are :data:`BLOCK_SECONDS` of the file's own samples; a file at another rate goes
    through one streaming soxr resampler (high quality, the quality of ``mfcc``'s resampling).
    """
    rate = int(handle.samplerate)
    resampler = (
        None
        if rate == config.sample_rate
        else soxr.ResampleStream(rate, config.sample_rate, 1, dtype="float32", quality="HQ")
    )
    block_frames = int(BLOCK_SECONDS * rate)
    handle.seek(0)
    while True:
        mono = _read(handle, block_frames)
        last = len(mono) < block_frames
        if resampler is not None:
            mono = resampler.resample_chunk(mono, last=last)
        if len(mono):
            yield mono
        if last:
            return


def _seek(handle: sf.SoundFile, frame: int) -> None:
    """Move to ``frame``; a short way forward is read through rather than sought (a FLAC seek
    costs about as much as decoding a second of audio)."""
    position = handle.tell()
    if 0 <= frame - position <= handle.samplerate:
        handle.read(frames=frame - position, dtype="float32")
    else:
        handle.seek(frame)


def read_span(
    handle: sf.SoundFile, start: int, stop: int, *, config: FeatureConfig = DEFAULT_FEATURES
) -> np.ndarray:
    """Samples ``[start, stop)`` of the recording at ``config.sample_rate`` (mono float32).

    At another rate, the span is read with a margin from a point where both rates meet on a
    whole sample, resampled in one call and cut, so it lines up with :func:`mono_blocks`.
    """
    rate, target = int(handle.samplerate), config.sample_rate
    if rate == target:
        _seek(handle, start)
        mono = _read(handle, stop - start)
    else:
        common = math.gcd(rate, target)
        step_target, step_native = target // common, rate // common
        margin = target // 20
        first = max(0, (start - margin) // step_target) * step_target
        native_start = first // step_target * step_native
        native_stop = min(handle.frames, -(-(stop + margin) * rate // target))
        _seek(handle, native_start)
        native = _read(handle, native_stop - native_start)
        mono = soxr.resample(native, rate, target, quality="HQ")[start - first : stop - first]
    if len(mono) < stop - start:
        mono = np.pad(mono, (0, stop - start - len(mono)))
    return np.ascontiguousarray(mono, dtype=np.float32)


class FrameLevels:
    """:func:`~udfs.features.frame_mean_square` of a stream, block by block, with the same frames.

    Push blocks in order; each call returns the mean squares of the frames it completed, and
    :meth:`finish` those of the last frames (zero padding after the end, as in the whole-signal
    function).  Only the samples of one unfinished frame are kept between blocks.
    """

    def __init__(self, config: FeatureConfig = DEFAULT_FEATURES):
        self.frame, self.hop = config.win_length, config.hop_length
        self.pending = np.zeros(self.frame // 2)
        self.samples = 0
        self.frames = 0

    def _complete(self, squares: np.ndarray) -> np.ndarray:
        if squares.size < self.frame:
            self.pending = squares
            return np.zeros(0)
        n = 1 + (squares.size - self.frame) // self.hop
        cumulative = np.concatenate(([0.0], np.cumsum(squares)))
        starts = np.arange(n) * self.hop
        self.pending = squares[n * self.hop :]
        self.frames += n
        return (cumulative[starts + self.frame] - cumulative[starts]) / self.frame

    def push(self, block: np.ndarray) -> np.ndarray:
        self.samples += block.size
        return self._complete(np.concatenate((self.pending, np.square(block.astype(np.float64)))))

    def finish(self) -> np.ndarray:
        total = 1 + self.samples // self.hop
        tail = self._complete(np.concatenate((self.pending, np.zeros(self.frame // 2))))
        return tail[: max(0, tail.size - (self.frames - total))]


def level_db(mean_square: np.ndarray) -> np.ndarray:
    """Frame levels in dB relative to full scale (``10 log10`` of the mean square, floor
    :data:`LEVEL_MIN_DB`)."""
    return 10.0 * np.log10(np.maximum(mean_square, 10.0 ** (LEVEL_MIN_DB / 10.0)))


def reference_db(histogram: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> float:
    """The loudest level (dB) that at least :data:`REFERENCE_SECONDS` of frames reach."""
    needed = max(1, int(round(REFERENCE_SECONDS * config.sample_rate / config.hop_length)))
    from_top = np.cumsum(histogram[::-1])
    reached = int(np.searchsorted(from_top, min(needed, int(from_top[-1]))))
    return LEVEL_MIN_DB + (histogram.size - 1 - reached) * LEVEL_STEP_DB


def speech_threshold_db(handle: sf.SoundFile, *, config: FeatureConfig = DEFAULT_FEATURES) -> float:
    """Pass 1: the level (dB) a frame must exceed to be loud: the reference minus
    ``trim_top_db``, and never below :data:`SPEECH_FLOOR_DB`."""
    bins = int(round((LEVEL_MAX_DB - LEVEL_MIN_DB) / LEVEL_STEP_DB)) + 1
    histogram = np.zeros(bins, dtype=np.int64)
    levels = FrameLevels(config)

    def count(mean_square):
        index = np.clip(
            ((level_db(mean_square) - LEVEL_MIN_DB) / LEVEL_STEP_DB).astype(int), 0, bins - 1
        )
        histogram[:] += np.bincount(index, minlength=bins)

    for block in mono_blocks(handle, config=config):
        count(levels.push(block))
    count(levels.finish())
    return max(reference_db(histogram, config=config) - config.trim_top_db, SPEECH_FLOOR_DB)


def speech_regions(
    handle: sf.SoundFile, threshold_db: float, *, config: FeatureConfig = DEFAULT_FEATURES
) -> tuple[list[tuple[int, int]], int]:
    """Pass 2: sample ranges ``[start, end)`` of speech at ``config.sample_rate``, and the
    recording's length in those samples.

    Loud frames (level above ``threshold_db``) closer than :data:`MAX_PAUSE_SECONDS` are one
    region, bounded as :func:`~udfs.features.speech_bounds` bounds one: from the first loud frame's
    centre to one hop after the last one's.
    """
    hop = config.hop_length
    max_gap = int(round(MAX_PAUSE_SECONDS * config.sample_rate / hop))
    min_frames = int(round(MIN_SPEECH_SECONDS * config.sample_rate / hop))
    threshold = 10.0 ** (threshold_db / 10.0)
    frame_runs: list[tuple[int, int]] = []
    current: list[int] | None = None
    levels = FrameLevels(config)
    offset = 0

    def scan(mean_square):
        nonlocal current, offset
        loud = np.concatenate(([False], mean_square > threshold, [False]))
        edges = np.flatnonzero(np.diff(loud.astype(np.int8)))
        for first, stop in zip(edges[::2] + offset, edges[1::2] + offset, strict=True):
            if current is not None and first - current[1] <= max_gap:
                current[1] = stop
                continue
            if current is not None and current[1] - current[0] >= min_frames:
                frame_runs.append((current[0], current[1]))
            current = [int(first), int(stop)]
        offset += mean_square.size

    for block in mono_blocks(handle, config=config):
        scan(levels.push(block))
    scan(levels.finish())
    if current is not None and current[1] - current[0] >= min_frames:
        frame_runs.append((current[0], current[1]))
    n = levels.samples
    return [(first * hop, min(n, stop * hop)) for first, stop in frame_runs], n


# --- windows -------------------------------------------------------------------------------


def window_starts(start: int, end: int, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """First samples of the windows over a region longer than one window: every
    :data:`WINDOW_HOP_SECONDS` from ``start``, and one more ending at ``end`` (on the frame grid)
    if the last would not reach it."""
    clip, hop = config.clip_samples, config.hop_length
    step = int(round(WINDOW_HOP_SECONDS * config.sample_rate / hop)) * hop
    last = start + (end - clip - start) // hop * hop
    starts = np.arange(start, last + 1, step)
    if starts[-1] < last:
        starts = np.append(starts, last)
    return starts


def stretch_bounds(starts: np.ndarray, start: int, end: int, clip: int) -> np.ndarray:
    """Boundaries of the stretches the windows answer for: the region's ends, and half-way
    between neighbouring window centres."""
    centres = starts + clip / 2
    return np.concatenate(([start], (centres[:-1] + centres[1:]) / 2, [end]))


def _voiced_share(
    mean_square: np.ndarray, aperiodicity: np.ndarray, loud_threshold: float
) -> float:
    with np.errstate(invalid="ignore"):
        voiced = (mean_square > loud_threshold) & (aperiodicity < PERIODIC_MAX)
    return float(voiced.mean()) if voiced.size else 0.0


def short_region_window(
    samples: np.ndarray, loud_threshold: float, *, config: FeatureConfig = DEFAULT_FEATURES
) -> tuple[np.ndarray, float]:
    """Features of a region no longer than one window (``mfcc_features`` of its samples) and
    the share of its frames that is loud and periodic."""
    clip = centred_speech(samples, config=config)
    features = mfcc_matrix(clip, config=config)
    if config.pitch:
        features = np.concatenate([features, pitch_rows(clip, config=config)])
    mean_square = frame_mean_square(samples, config=config)
    loud = mean_square > loud_threshold
    _, aperiodicity = yin_frames(samples, config=config, only=loud)
    return features, _voiced_share(mean_square, aperiodicity, loud_threshold)


def chunk_windows(
    samples: np.ndarray,
    offsets: np.ndarray,
    stretches: Sequence[tuple[int, int]],
    loud_threshold: float,
    *,
    config: FeatureConfig = DEFAULT_FEATURES,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of windows sliced from one chunk's frames, and each stretch's voiced share.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,), dtype=float32]
        The chunk: from the first window's start to the last window's end.
    offsets : np.ndarray [shape=(windows,), dtype=int]
        Each window's first sample in the chunk (multiples of ``hop_length``).
    stretches : sequence of (int, int)
        Each window's stretch in chunk samples (inside the window).
    loud_threshold : float
        Mean square above which a frame is loud (the recording's speech threshold).

    Returns
    -------
    features : np.ndarray [shape=(windows, *config.shape), dtype=float32]
    voiced_share : np.ndarray [shape=(windows,), dtype=float64]
    """
    hop, width = config.hop_length, config.n_frames
    first_frames = np.asarray(offsets) // hop
    db = mel_db_frames(samples, config=config)
    features = cepstra_from_mel_db(
        np.stack([db[k : k + width] for k in first_frames]), config=config
    )
    mean_square = frame_mean_square(samples, config=config)
    windows = np.stack([mean_square[k : k + width] for k in first_frames])
    # YIN where any window finds the frame loud, and where the recording does (voicing).
    needed = mean_square > loud_threshold
    for k, loud in zip(first_frames, loud_frames(windows), strict=True):
        needed[k : k + width] |= loud
    f0, aperiodicity = yin_frames(samples, config=config, only=needed)
    if config.pitch:
        prosody = np.stack(
            [
                prosody_from_frames(mean_square[k : k + width], f0[k : k + width], config=config)
                for k in first_frames
            ]
        )
        features = np.concatenate([features, prosody], axis=1)
    shares = np.array(
        [
            _voiced_share(
                mean_square[a // hop : -(-b // hop)],
                aperiodicity[a // hop : -(-b // hop)],
                loud_threshold,
            )
            for a, b in stretches
        ]
    )
    return features, shares


def analyse_recording(
    handle: sf.SoundFile, predict: Predict, *, config: FeatureConfig = DEFAULT_FEATURES
) -> Iterator[Segment]:
    """The segments of an open recording, in time order (passes 1-3 of the module docstring).

    Parameters
    ----------
    handle : soundfile.SoundFile
        Seekable, any length, rate and channel count.
    predict : callable
        ``predict(features [shape=(n, *config.shape), float32])`` -> probabilities
        [shape=(n, 8)]; called with at most :data:`BATCH_WINDOWS` windows.
    config : FeatureConfig, keyword-only
        The model's features.

    Yields
    ------
    Segment
        Non-overlapping stretches of speech; none for silence or noise.  Raises AudioError when
        the file cannot be decoded.
    """
    threshold_db = speech_threshold_db(handle, config=config)
    regions, _ = speech_regions(handle, threshold_db, config=config)
    loud_threshold = 10.0 ** (threshold_db / 10.0)
    rate, clip = config.sample_rate, config.clip_samples
    pending_bounds: list[tuple[float, float]] = []
    pending_features: list[np.ndarray] = []

    def flush() -> Iterator[Segment]:
        if pending_features:
            probabilities = np.asarray(predict(np.stack(pending_features)), dtype=np.float32)
            for (start_s, end_s), scores in zip(pending_bounds, probabilities, strict=True):
                yield Segment(start_s, end_s, scores)
            pending_bounds.clear()
            pending_features.clear()

    def add(start: float, end: float, features: np.ndarray) -> Iterator[Segment]:
        pending_bounds.append((start / rate, end / rate))
        pending_features.append(features)
        if len(pending_features) >= BATCH_WINDOWS:
            yield from flush()

    for start, end in regions:
        if end - start <= clip:
            samples = read_span(handle, start, end, config=config)
            features, share = short_region_window(samples, loud_threshold, config=config)
            if share >= MIN_VOICED_SHARE:
                yield from add(start, end, features)
            continue
        starts = window_starts(start, end, config=config)
        bounds = stretch_bounds(starts, start, end, clip)
        for first in range(0, len(starts), CHUNK_WINDOWS):
            chunk = starts[first : first + CHUNK_WINDOWS]
            origin = int(chunk[0])
            samples = read_span(handle, origin, int(chunk[-1]) + clip, config=config)
            stretches = [
                (int(bounds[i]) - origin, int(math.ceil(bounds[i + 1])) - origin)
                for i in range(first, first + len(chunk))
            ]
            features, shares = chunk_windows(
                samples, chunk - origin, stretches, loud_threshold, config=config
            )
            for i, (window, share) in enumerate(zip(features, shares, strict=True)):
                if share >= MIN_VOICED_SHARE:
                    yield from add(bounds[first + i], bounds[first + i + 1], window)
    yield from flush()


def source_segments(
    source, roots: Sequence[str], predict: Predict, *, config: FeatureConfig = DEFAULT_FEATURES
) -> Iterator[Segment]:
    """:func:`analyse_recording` of an ``audio`` argument (path read in blocks, or bytes)."""
    with open_audio(source, roots) as handle:
        yield from analyse_recording(handle, predict, config=config)


def weighted_scores(segments: Sequence[Segment]) -> np.ndarray | None:
    """Probabilities of a whole recording: its segments' averaged, weighted by duration; None
    without speech."""
    durations = np.array([segment.duration_s for segment in segments])
    if not durations.size or durations.sum() <= 0:
        return None
    stacked = np.stack([segment.probabilities for segment in segments])
    return (durations @ stacked / durations.sum()).astype(np.float32)


def clip_features_if_short(
    source, roots: Sequence[str], *, config: FeatureConfig = DEFAULT_FEATURES
) -> np.ndarray | None:
    """``mfcc_features`` of a recording whose speech fits the model's window, else None.

    Short means: at most :data:`~udfs.audio.MAX_DECODE_SECONDS` long, and no more than
    ``clip_seconds`` between its first and last sound as ``mfcc`` trims it.  Such a clip is
    answered exactly as ``mfcc`` + the model always answered it; a longer one is analysed
    whole (:func:`analyse_recording`).  Raises AudioError for a bad row.
    """
    with open_audio(source, roots) as handle:
        if handle.frames > MAX_DECODE_SECONDS * handle.samplerate:
            return None
        y, sample_rate = decode_handle(handle)
    mono = mono_at_rate(y, sample_rate, config=config)
    start, end = speech_bounds(mono, config=config) if np.any(mono) else (0, 0)
    if end - start > config.clip_samples:
        return None
    return canonical_features(centred_speech(mono, config=config), config=config)
