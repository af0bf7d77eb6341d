"""Bad and unusual audio through SQL: a correct result or NULL with a reason, never a failed
query."""

import numpy as np
import pytest
import soundfile as sf

from tests.audiogen import voiced_signal, write_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def odd_dir(audio_root):
    directory = audio_root / "odd cases ünï"
    rng = np.random.default_rng(5)
    good = write_clip(
        directory / "full clip.wav",
        voiced_signal(rng, sample_rate=16000, seconds=1.5),
        16000,
        subtype="PCM_16",
    )
    data = good.read_bytes()
    (directory / "truncated data.wav").write_bytes(data[: len(data) // 2])
    flac = write_clip(
        directory / "whole.flac",
        voiced_signal(rng, sample_rate=16000, seconds=1.5),
        16000,
        subtype="PCM_16",
        format="FLAC",
    )
    (directory / "truncated.flac").write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    write_clip(
        directory / "ten_samples.wav", np.full((10, 1), 0.1, np.float32), 16000, subtype="PCM_16"
    )
    write_clip(directory / "silence.wav", np.zeros((16000, 1), np.float32), 16000, subtype="PCM_16")
    (directory / "empty.wav").write_bytes(b"")
    flac.unlink()
    return directory


def test_odd_files_complete_with_results_or_reasons(cursor, odd_dir):
    cursor.execute(
        f"CREATE OR REPLACE TEMPORARY VIEW odd USING binaryFile OPTIONS (path '{odd_dir}')"
    )
    cursor.execute(
        "SELECT regexp_extract(path, '[^/]+$', 0), audio_info(content).frames, "
        "audio_info(content).error, size(mfcc(content)), emotion(content) IS NOT NULL, "
        "audio_info(path).error <=> audio_info(content).error FROM odd ORDER BY 1"
    )
    result = {name: rest for name, *rest in cursor.fetchall()}
    # The empty file is no row at all (Spark makes no split of a 0-byte file; docs/features.md
    # says so): asked by path, it has its reason.
    assert set(result) == {
        "full clip.wav",
        "truncated data.wav",
        "truncated.flac",
        "ten_samples.wav",
        "silence.wav",
    }
    # A path with spaces and non-ASCII characters reads exactly as the bytes do.
    assert all(row[4] for row in result.values())
    frames, error, size, classified, _ = result["full clip.wav"]
    assert (frames, error, size, classified) == (
        int(1.5 * 16000) + 2 * int(0.4 * 16000),
        None,
        12943,
        True,
    )
    # Truncated files: what is there is decoded (WAV) or the reason is given (FLAC) — never a
    # failed query.
    frames, error, size, classified, _ = result["truncated data.wav"]
    assert error is None and 0 < frames < 2 * 16000 and size == 12943
    frames, error, size, classified, _ = result["truncated.flac"]
    assert (error is None and size == 12943) or (error and size is None), (error, size)
    for name in ("ten_samples.wav", "silence.wav"):
        frames, error, size, classified, _ = result[name]
        assert error is None and size == 12943 and classified, name
    cursor.execute(f"SELECT audio_info('{odd_dir / 'empty.wav'}').error")
    assert "empty audio" in cursor.fetchall()[0][0]


def test_a_long_file_is_decoded_only_up_to_the_cap(cursor, audio_root):
    # Ten minutes of 8 kHz audio: the header says so, decoding stops at the documented cap.
    path = audio_root / "long" / "ten_minutes.wav"
    path.parent.mkdir(exist_ok=True)
    with sf.SoundFile(str(path), "w", samplerate=8000, channels=1, subtype="PCM_16") as handle:
        block = np.zeros(8000 * 60, np.float32)
        for _ in range(10):
            handle.write(block)
    cursor.execute(
        f"SELECT audio_info('{path}').duration_s, size(mfcc('{path}')), audio_info('{path}').error"
    )
    duration, size, error = cursor.fetchall()[0]
    assert error is None and size == 12943
    assert duration == pytest.approx(600.0)
