"""A two-hour recording in a binaryFile table: decoded up to the cap, bounded memory, other rows
unaffected."""

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from server.spark import SERVER_DAEMON_MODULE
from tests.audiogen import voiced_signal, write_clip
from tests.processes import process_tree

pytestmark = pytest.mark.slow

TWO_HOURS_S = 2 * 3600
SAMPLE_RATE = 16000
#: How much higher than before the query a Python worker's peak memory may go, in file sizes:
#: the Arrow buffer and one Python copy of the bytes, plus decoding of the first 60 s.
WORKER_GROWTH_LIMIT_FILES = 3.0


def write_long_wav(path: Path, seconds: int, *, sample_rate: int = SAMPLE_RATE) -> Path:
    """A 16-bit mono WAV of ``seconds``: a real first second of speech-like sound, then silence.

    The silence is a sparse extension of the file, so two hours take no time to write.
    """
    rng = np.random.default_rng(2)
    write_clip(
        path,
        voiced_signal(rng, sample_rate=sample_rate, seconds=1.0),
        sample_rate,
        subtype="PCM_16",
    )
    header = bytearray(path.read_bytes())
    data_at = header.index(b"data")
    data_bytes = seconds * sample_rate * 2
    total = data_at + 8 + data_bytes
    header[4:8] = struct.pack("<I", total - 8)
    header[data_at + 4 : data_at + 8] = struct.pack("<I", data_bytes)
    with open(path, "r+b") as handle:
        handle.write(header)
        handle.truncate(total)
    return path


def worker_peaks_mb(server) -> dict[int, float]:
    """Peak resident memory (VmHWM) of each Spark Python worker under the server, in MB."""
    peaks = {}
    for pid in process_tree(server.process.pid)[1:]:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if SERVER_DAEMON_MODULE.encode() not in command:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[pid] = int(line.split()[1]) / 1024
    return peaks


def test_two_hour_file_in_a_binary_table(server, cursor, audio_root):
    # Under the audio root: the SQL sandbox refuses table and view locations anywhere else.
    directory = audio_root / "long-recordings"
    directory.mkdir(exist_ok=True)
    long_file = write_long_wav(directory / "two_hours.wav", TWO_HOURS_S)
    assert sf.info(str(long_file)).duration == pytest.approx(TWO_HOURS_S)
    write_clip(
        directory / "short.wav",
        voiced_signal(np.random.default_rng(4), sample_rate=SAMPLE_RATE, seconds=1.5),
        SAMPLE_RATE,
        subtype="PCM_16",
    )
    query = (
        "SELECT regexp_extract(path, '[^/]+$', 0), length(content), "
        "audio_info(content).duration_s, audio_info(content).error, size(mfcc(content)), "
        "emotion(content) IS NOT NULL FROM {} ORDER BY 1"
    )
    # The baseline is a worker that has run the same query on short clips (TensorFlow and the
    # model loaded), not whatever state earlier tests left the workers in.
    warm = audio_root / "short-recordings"
    warm.mkdir(exist_ok=True)
    for index in range(4):
        write_clip(
            warm / f"short{index}.wav",
            voiced_signal(np.random.default_rng(index), sample_rate=SAMPLE_RATE, seconds=1.5),
            SAMPLE_RATE,
            subtype="PCM_16",
        )
    cursor.execute(
        f"CREATE OR REPLACE TEMPORARY VIEW short_calls USING binaryFile OPTIONS (path '{warm}')"
    )
    cursor.execute(query.format("short_calls"))
    assert len(cursor.fetchall()) == 4
    before = worker_peaks_mb(server)
    cursor.execute(
        f"CREATE OR REPLACE TEMPORARY VIEW long_calls USING binaryFile OPTIONS (path '{directory}')"
    )
    cursor.execute(query.format("long_calls"))
    rows = {name: rest for name, *rest in cursor.fetchall()}
    assert rows["short.wav"][2:] == [None, 12943, True]
    length, duration, error, size, classified = rows["two_hours.wav"]
    assert length == long_file.stat().st_size
    assert duration == pytest.approx(TWO_HOURS_S) and error is None and size == 12943 and classified
    after = worker_peaks_mb(server)
    file_mb = long_file.stat().st_size / 2**20
    print(
        f"Python worker peak memory before {before} and after {after} (MB), file {file_mb:.0f} MB"
    )
    assert (
        after
        and max(after.values())
        < max(before.values(), default=0) + WORKER_GROWTH_LIMIT_FILES * file_mb
    )
