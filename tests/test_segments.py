"""emotion_segments' pure core (udfs/segments.py): levels, speech regions, windows, memory."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from tests.audiogen import voiced_signal, write_bad_inputs
from tests.segmentgen import SAMPLE_RATE, compose, write_plan_in_blocks
from udfs import segments
from udfs.errors import AudioError
from udfs.features import DEFAULT_FEATURES, frame_mean_square, mfcc_features, mono_at_rate
from udfs.labels import EMOTIONS

CFG = DEFAULT_FEATURES
#: Stated tolerance of segment boundaries against the generated truth, in seconds.
BOUNDARY_TOLERANCE_S = 0.05
#: Stated bound of the memory ``emotion_segments`` allocates for one recording of any length
#: (traced numpy and Python allocations, the input bytes not counted); docs/long-recordings.md.
MEMORY_BOUND_MB = 96

PLAN = [
    ("silence", 2.0),
    ("speech", 8.0),  # a long region: several windows
    ("silence", 3.0),
    ("noise", 2.0),  # loud but not speech: no rows
    ("silence", 3.0),
    ("speech", 2.0),  # one window
    ("silence", 1.5),
    ("speech", 4.1),
    ("silence", 2.0),
]


def energy_predict(features: np.ndarray) -> np.ndarray:
    """A stand-in model: deterministic probabilities that depend on the features."""
    logits = np.stack([features[:, i].mean(axis=1) for i in range(len(EMOTIONS))], axis=1)
    exp = np.exp((logits - logits.max(axis=1, keepdims=True)) / 10.0)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def encode(y: np.ndarray, sample_rate: int = SAMPLE_RATE, format: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sample_rate, format=format, subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def recording():
    y, speech = compose(np.random.default_rng(11), PLAN)
    return y, speech


def covered(segments_, start, end):
    return [s for s in segments_ if s.end_s > start and s.start_s < end]


@pytest.mark.parametrize("block", [1, 159, 160, 400, 4097, 48000])
def test_frame_levels_in_blocks_equal_the_whole_signal(rng, block):
    y = rng.standard_normal(20011).astype(np.float32)
    levels = segments.FrameLevels(CFG)
    parts = [levels.push(y[i : i + block]) for i in range(0, y.size, block)]
    streamed = np.concatenate([*parts, levels.finish()])
    np.testing.assert_allclose(streamed, frame_mean_square(y, config=CFG), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 44100, 48000])
def test_read_span_lines_up_with_whole_resampling(rng, sample_rate):
    y = voiced_signal(rng, sample_rate=sample_rate, seconds=4.0)
    whole = mono_at_rate(y.T, sample_rate, config=CFG)
    with sf.SoundFile(io.BytesIO(encode(y, sample_rate, "FLAC"))) as handle:
        span = segments.read_span(handle, 20000, 52000, config=CFG)
        streamed = np.concatenate(list(segments.mono_blocks(handle, config=CFG)))
    assert span.shape == (32000,)
    np.testing.assert_allclose(span, whole[20000:52000], atol=2e-3)
    assert abs(streamed.size - whole.size) <= 1
    n = min(streamed.size, whole.size)
    np.testing.assert_allclose(streamed[:n], whole[:n], atol=2e-3)


def test_segments_follow_speech_and_skip_silence_and_noise(recording):
    y, speech = recording
    found = list(segments.source_segments(encode(y), (), energy_predict, config=CFG))
    assert found, "no segments"
    # Rows tile each speech stretch: contiguous, no overlap, boundaries within the tolerance.
    for start, end in speech:
        rows = covered(found, start - 0.5, end + 0.5)
        assert rows, (start, end)
        assert rows[0].start_s == pytest.approx(start, abs=BOUNDARY_TOLERANCE_S)
        assert rows[-1].end_s == pytest.approx(end, abs=BOUNDARY_TOLERANCE_S)
        for before, after in zip(rows, rows[1:]):
            assert after.start_s == pytest.approx(before.end_s)
        if end - start > CFG.clip_seconds:
            assert len(rows) >= 2
            assert all(row.duration_s <= segments.WINDOW_HOP_SECONDS + 0.76 for row in rows)
    # Nothing in silence or in the noise burst.
    for segment in found:
        assert any(
            start - BOUNDARY_TOLERANCE_S <= segment.start_s < segment.end_s <= end + 0.05
            for start, end in speech
        ), segment
    total = sum(s.duration_s for s in found)
    assert total == pytest.approx(sum(b - a for a, b in speech), abs=0.2)
    for segment in found:
        assert segment.probabilities.shape == (len(EMOTIONS),)
        assert segment.row()[2] == EMOTIONS[int(np.argmax(segment.probabilities))]


def test_a_float_recording_in_integer_scale_has_the_same_segments(recording):
    """The speech threshold is relative to the recording's own loud frames, however loud."""
    y, _ = recording

    def found(samples):
        buffer = io.BytesIO()
        sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="FLOAT")
        rows = segments.source_segments(buffer.getvalue(), (), energy_predict, config=CFG)
        return [(round(s.start_s, 3), round(s.end_s, 3)) for s in rows]

    assert found(y * 32768.0) == found(y)


def test_silence_and_noise_give_no_segments(rng):
    quiet, _ = compose(rng, [("silence", 10.0)])
    noisy, _ = compose(rng, [("silence", 1.0), ("noise", 6.0), ("silence", 1.0)])
    for y in (quiet, noisy, np.full(SAMPLE_RATE * 5, 1e-5, np.float32)):
        assert list(segments.source_segments(encode(y), (), energy_predict)) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_speech_under_background_noise_keeps_its_rows_and_the_noise_alone_gives_none(seed):
    """A call recorded in a noisy room: speech in pink noise is still speech, and the same noise
    without the speech is not.  The generated speech is more periodic than a voice, so 0 dB SNR
    here is about what 5 dB is for recorded speech (docs/long-recordings.md)."""
    from udfs.degrade import degrade_samples

    y, speech = compose(
        np.random.default_rng(seed), [("silence", 1.0), ("speech", 6.0), ("silence", 1.0)]
    )
    noisy, rate = degrade_samples(y, SAMPLE_RATE, "noise:0", seed=3)
    found = list(segments.source_segments(encode(noisy, rate), (), energy_predict))
    (start, end) = speech[0]
    inside = sum(min(s.end_s, end) - max(s.start_s, start) for s in found if s.end_s > start)
    assert inside > 0.8 * (end - start)
    # The noise alone, as loud as it was beside the speech (the mix scales it to the speech).
    noise_only = noisy - y
    assert list(segments.source_segments(encode(noise_only, rate), (), energy_predict)) == []


def test_window_features_match_mfcc_features_of_the_window(recording):
    y, speech = recording
    start, end = (int(t * SAMPLE_RATE) for t in speech[0])
    starts = segments.window_starts(start, end, config=CFG)
    bounds = segments.stretch_bounds(starts, start, end, CFG.clip_samples)
    samples = y[starts[0] : starts[-1] + CFG.clip_samples]
    stretches = [(int(a) - starts[0], int(b) - starts[0]) for a, b in zip(bounds, bounds[1:])]
    features, shares = segments.chunk_windows(
        samples, starts - starts[0], stretches, 10 ** (-4.0), config=CFG
    )
    assert features.shape == (len(starts), *CFG.shape)
    assert np.all(shares > 0.5)
    inner = slice(3, CFG.n_frames - 3)  # the frames that see no padding in either computation
    for window, first in zip(features, starts):
        expected = mfcc_features(y[first : first + CFG.clip_samples], SAMPLE_RATE, config=CFG)
        np.testing.assert_allclose(window[:, inner], expected[:, inner], atol=2e-3)


def test_window_plan_covers_the_region():
    start, end = 16000, 16000 + 7 * 16000 + 480
    starts = segments.window_starts(start, end, config=CFG)
    assert starts[0] == start and starts[-1] + CFG.clip_samples <= end
    assert end - (starts[-1] + CFG.clip_samples) < CFG.hop_length
    assert np.all(np.diff(starts[:-1]) == int(segments.WINDOW_HOP_SECONDS * SAMPLE_RATE))
    bounds = segments.stretch_bounds(starts, start, end, CFG.clip_samples)
    assert bounds[0] == start and bounds[-1] == end and np.all(np.diff(bounds) > 0)


def test_whole_recording_scores_are_the_duration_weighted_mean(recording):
    y, _ = recording
    found = list(segments.source_segments(encode(y), (), energy_predict))
    weights = np.array([s.end_s - s.start_s for s in found])
    expected = (weights[:, None] * np.stack([s.probabilities for s in found])).sum(
        0
    ) / weights.sum()
    np.testing.assert_allclose(segments.weighted_scores(found), expected, rtol=1e-6)
    assert segments.weighted_scores([]) is None


def test_short_clip_features_are_exactly_mfcc_features(rng):
    clip = voiced_signal(rng, sample_rate=48000, seconds=1.5, channels=2)
    data = encode(clip, 48000)
    features = segments.clip_features_if_short(data, ())
    y, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    np.testing.assert_array_equal(features, mfcc_features(y.T, rate))
    long_speech, _ = compose(rng, [("speech", 5.0)])
    assert segments.clip_features_if_short(encode(long_speech), ()) is None


def test_bad_inputs_raise_audio_errors(tmp_path, rng):
    paths = write_bad_inputs(tmp_path / "bad", rng)
    for path in paths.values():
        with pytest.raises(AudioError):
            list(segments.source_segments(str(path), (str(tmp_path),), energy_predict))
    with pytest.raises(AudioError, match="outside the readable audio roots"):
        list(segments.source_segments(str(paths["random.wav"]), ("/nonexistent",), energy_predict))
    with pytest.raises(AudioError, match="NULL"):
        list(segments.source_segments(None, (), energy_predict))


def test_batches_never_exceed_the_batch_size(rng):
    y, _ = compose(rng, [("speech", 100.0)])
    sizes = []

    def predict(features):
        sizes.append(len(features))
        return energy_predict(features)

    found = list(segments.source_segments(encode(y), (), predict))
    assert (
        max(sizes) <= segments.BATCH_WINDOWS and sum(sizes) == len(found) > segments.BATCH_WINDOWS
    )


TWO_HOURS_PLAN = [
    ("silence", 600.0),
    ("speech", 2.5),
    ("silence", 1200.0),
    ("speech", 120.0),  # a long region: read in chunks
    ("silence", 3000.0),
    ("noise", 3.0),
    ("silence", 2271.5),
    ("speech", 3.0),  # to the very end
]


@pytest.fixture(scope="module")
def two_hour_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "two_hours.flac"
    speech = write_plan_in_blocks(path, np.random.default_rng(5), TWO_HOURS_PLAN)
    return path, speech


@pytest.mark.parametrize("form", ["path", "bytes"])
def test_two_hour_file_within_the_memory_bound(two_hour_file, form):
    path, speech = two_hour_file
    assert sf.info(str(path)).duration == pytest.approx(7200.0)
    source = str(path) if form == "path" else path.read_bytes()
    tracemalloc.start()
    try:
        found = list(segments.source_segments(source, (str(path.parent),), energy_predict))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"two-hour file by {form}: peak traced memory {peak / 2**20:.1f} MB")
    assert peak < MEMORY_BOUND_MB * 2**20
    for start, end in speech:
        rows = covered(found, start, end)
        assert rows[0].start_s == pytest.approx(start, abs=BOUNDARY_TOLERANCE_S)
        assert rows[-1].end_s == pytest.approx(end, abs=BOUNDARY_TOLERANCE_S)
    assert sum(s.duration_s for s in found) == pytest.approx(sum(b - a for a, b in speech), abs=0.2)
