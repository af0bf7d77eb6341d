import os

import numpy as np
import pytest

import udfs.audio
from tests.audiogen import VARIANTS, voiced_signal, write_bad_inputs, write_clip, write_variants
from udfs.audio import (
    MAX_DECODE_SECONDS,
    MAX_SAMPLE_MAGNITUDE,
    AudioError,
    audio_info,
    decode_audio,
    load_audio,
    open_audio_file,
    probe_audio,
    resolve_audio_path,
)


@pytest.fixture
def variants(tmp_path, rng):
    return write_variants(tmp_path / "variants", rng)


@pytest.mark.parametrize("name,rate,channels,subtype,fmt", VARIANTS)
def test_decode_every_format(variants, name, rate, channels, subtype, fmt):
    data = variants[name].read_bytes()
    y, sample_rate = decode_audio(data)
    assert sample_rate == rate
    assert y.shape[0] == channels
    assert y.dtype == np.float32
    assert np.max(np.abs(y)) == pytest.approx(0.5, abs=0.08)
    info = probe_audio(data)
    assert (info.sample_rate, info.channels, info.format, info.subtype, info.error) == (
        rate,
        channels,
        fmt,
        subtype,
        None,
    )
    assert info.duration_s == pytest.approx(info.frames / rate)


@pytest.mark.parametrize(
    "subtype,tolerance",
    [("PCM_U8", 1 / 64), ("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-6), ("FLOAT", 0)],
)
def test_decoded_samples_match_what_was_written(tmp_path, rng, subtype, tolerance):
    samples = voiced_signal(rng, sample_rate=16000, seconds=0.5)
    path = write_clip(tmp_path / f"{subtype}.wav", samples, 16000, subtype=subtype)
    y, _ = decode_audio(path.read_bytes())
    assert np.max(np.abs(y[0] - samples[:, 0])) <= tolerance + 1e-7


def test_decode_is_capped(tmp_path, rng):
    samples = np.zeros((8000 * 5, 1), np.float32)
    path = write_clip(tmp_path / "long.wav", samples, 8000, subtype="PCM_16")
    y, _ = decode_audio(path.read_bytes(), max_seconds=2.0)
    assert y.shape == (1, 16000)


def test_a_truncated_flac_is_said_to_be_truncated_or_damaged(tmp_path, rng):
    """libsndfile's own reason for a cut-off FLAC ("Internal psf_fseek() failed.", "lost
    sync") names nothing a user can act on; the error says what is probably wrong."""
    whole = write_clip(
        tmp_path / "whole.flac",
        voiced_signal(rng, sample_rate=16000, seconds=1.0),
        16000,
        subtype="PCM_16",
    ).read_bytes()
    for cut in (44, len(whole) // 2):
        with pytest.raises(AudioError, match="truncated or damaged"):
            decode_audio(whole[:cut])


def test_audio_info_of_a_flac_cut_off_after_the_decoded_minute_says_so(tmp_path, rng):
    """``emotion`` reads a recording to its end: a FLAC whose first minute decodes but whose
    end is missing must not look whole in ``audio_info``."""
    rate = 8000
    seconds = MAX_DECODE_SECONDS + 20
    samples = (rng.standard_normal((int(seconds * rate), 1)) * 0.1).astype(np.float32)
    whole = write_clip(tmp_path / "long.flac", samples, rate, subtype="PCM_16").read_bytes()
    assert audio_info(whole, ()).error is None
    assert audio_info(whole, ()).duration_s == pytest.approx(seconds)
    for cut in (0.95, 0.9995):
        info = audio_info(whole[: int(len(whole) * cut)], ())
        assert "truncated or damaged" in info.error, cut
        assert info.frames is None


@pytest.mark.parametrize(
    "name,reason",
    [
        ("empty.wav", "empty audio"),
        ("header_only.wav", "no audio samples"),
        ("truncated_header.wav", "not a readable audio file"),
        ("random.wav", "not a readable audio file"),
        ("text.wav", "not a readable audio file"),
        ("a_directory.wav", "is a directory"),
        ("one_hertz.wav", "sample rate 1 Hz is below 4000 Hz"),
    ],
)
def test_bad_inputs_give_a_reason(tmp_path, rng, name, reason):
    paths = write_bad_inputs(tmp_path, rng)
    info = audio_info(str(paths[name]), [str(tmp_path)])
    assert info.error is not None and reason in info.error
    assert info.sample_rate is None
    with pytest.raises(AudioError):
        load_audio(str(paths[name]), [str(tmp_path)])


def test_missing_null_and_wrong_type(tmp_path):
    assert "no such file" in audio_info(str(tmp_path / "nope.wav"), [str(tmp_path)]).error
    assert audio_info(None, [str(tmp_path)]).error == "audio is NULL"
    assert "empty path" in audio_info("", [str(tmp_path)]).error
    assert "path string or binary" in audio_info(42, [str(tmp_path)]).error
    assert "NUL character" in audio_info(f"{tmp_path}/a\0b.wav", [str(tmp_path)]).error
    assert "NUL character" in audio_info(f"file:{tmp_path}/a%00b.wav", [str(tmp_path)]).error
    # Resolved before the roots check, a string of megabytes held a core for minutes.
    error = audio_info(f"{tmp_path}/" * 200_000, [str(tmp_path)]).error
    assert "is longer than a path can be (4096 bytes)" in error and len(error) < 300


def test_path_and_bytes_decode_identically(variants, tmp_path):
    path = variants["pcm24_44k_stereo.wav"]
    from_path = load_audio(str(path), [str(tmp_path)])
    from_bytes = load_audio(path.read_bytes(), [])
    np.testing.assert_array_equal(from_path[0], from_bytes[0])
    assert audio_info(str(path), [str(tmp_path)]) == audio_info(path.read_bytes(), [])


def test_a_file_of_any_size_is_read_by_path_as_its_bytes_are(tmp_path, rng):
    """A path is decoded in place, never through a copy cut at some size: a 70-minute WAV
    (134 MB) says how long it is, and its first minute decodes the same, by path or as bytes."""
    start = voiced_signal(rng, sample_rate=16000, seconds=1.0)
    path = write_clip(tmp_path / "long.wav", start, 16000, subtype="PCM_16")
    frames = 70 * 60 * 16000
    with open(path, "r+b") as handle:  # the rest silence, sparse: RIFF and data sizes grown
        handle.truncate(44 + 2 * frames)
        handle.seek(4)
        handle.write((36 + 2 * frames).to_bytes(4, "little"))
        handle.seek(40)
        handle.write((2 * frames).to_bytes(4, "little"))
    by_path = audio_info(str(path), [str(tmp_path)])
    assert (by_path.frames, by_path.duration_s, by_path.error) == (frames, 4200.0, None)
    assert by_path == audio_info(path.read_bytes(), [])
    y, _ = load_audio(str(path), [str(tmp_path)])
    assert y.shape == (1, 60 * 16000)
    np.testing.assert_array_equal(y, load_audio(path.read_bytes(), [])[0])


def test_many_channels_at_a_high_rate_are_decoded_within_the_sample_bound(
    tmp_path, rng, monkeypatch
):
    """A few hundred kB can claim a minute of eight channels at 655 kHz: decoding stops at
    MAX_DECODE_SAMPLES over all channels, before MAX_DECODE_SECONDS."""
    samples = voiced_signal(rng, sample_rate=16000, seconds=1.0, channels=4)
    path = write_clip(tmp_path / "four.wav", samples, 16000, subtype="PCM_16")
    assert load_audio(str(path), [str(tmp_path)])[0].shape == (4, len(samples))
    monkeypatch.setattr(udfs.audio, "MAX_DECODE_SAMPLES", 4 * 1000 + 3)
    y, rate = load_audio(str(path), [str(tmp_path)])
    assert (y.shape, rate) == ((4, 1000), 16000)
    np.testing.assert_array_equal(y[:, :1000], decode_audio(path.read_bytes())[0])
    assert audio_info(str(path), [str(tmp_path)]).frames == len(samples)  # the header's


@pytest.mark.parametrize("peak,error", [(1e9, None), (1e15, "as large as 1e+15")])
def test_float_samples_far_beyond_any_level_are_a_bad_row(tmp_path, rng, peak, error):
    """A float WAV may hold any value; from about 1e18 the features' spectrum overflows, so
    far beyond any level (float WAVs in integer scale included) a row is refused, by name."""
    samples = voiced_signal(rng, sample_rate=16000, seconds=0.5)
    samples = samples / np.max(np.abs(samples)) * peak
    path = write_clip(tmp_path / "loud.wav", samples, 16000, subtype="FLOAT")
    assert (peak > MAX_SAMPLE_MAGNITUDE) == (error is not None)
    for form in (str(path), path.read_bytes()):
        info = audio_info(form, [str(tmp_path)])
        assert info.error is None if error is None else error in info.error


def test_a_flac_that_does_not_say_its_length_is_refused_by_name(tmp_path, rng):
    """FLAC written to a pipe leaves the sample count of its header at 0 (unknown): libsndfile
    then claims 2**63 frames and cannot read the file reliably."""
    whole = write_clip(
        tmp_path / "clip.flac",
        voiced_signal(rng, sample_rate=16000, seconds=1.0),
        16000,
        subtype="PCM_16",
    ).read_bytes()
    streamed = bytearray(whole)
    assert streamed[:4] == b"fLaC" and streamed[4] & 0x7F == 0  # STREAMINFO first
    streamed[21] &= 0xF0  # its 36-bit sample count: bytes 18-25 end with it
    streamed[22:26] = bytes(4)
    (tmp_path / "streamed.flac").write_bytes(streamed)
    for form in (str(tmp_path / "streamed.flac"), bytes(streamed)):
        info = audio_info(form, [str(tmp_path)])
        assert info.sample_rate is None and "does not say how long" in info.error


def test_file_uri_and_spaces(tmp_path, rng):
    path = write_clip(
        tmp_path / "my clips" / "ünïcode köln.wav",
        voiced_signal(rng, sample_rate=16000, seconds=0.5),
        16000,
        subtype="PCM_16",
    )
    assert audio_info(f"file:{path}", [str(tmp_path)]).error is None
    assert audio_info(f"file://{path}", [str(tmp_path)]).error is None
    encoded = f"file:{tmp_path}/my%20clips/{path.name}"
    assert audio_info(encoded, [str(tmp_path)]).error is None


class TestConfinement:
    def test_outside_root_refused(self, tmp_path, rng):
        root, outside = tmp_path / "root", tmp_path / "outside"
        root.mkdir()
        secret = write_clip(
            outside / "secret.wav",
            voiced_signal(rng, sample_rate=16000, seconds=0.3),
            16000,
            subtype="PCM_16",
        )
        info = audio_info(str(secret), [str(root)])
        assert "outside the readable audio roots" in info.error

    def test_dotdot_escape_refused(self, tmp_path, rng):
        root = tmp_path / "root"
        root.mkdir()
        write_clip(
            tmp_path / "secret.wav",
            voiced_signal(rng, sample_rate=16000, seconds=0.3),
            16000,
            subtype="PCM_16",
        )
        with pytest.raises(AudioError, match="outside"):
            resolve_audio_path(f"{root}/../secret.wav", [str(root)])

    def test_symlink_escape_refused(self, tmp_path, rng):
        root = tmp_path / "root"
        root.mkdir()
        secret = write_clip(
            tmp_path / "secret.wav",
            voiced_signal(rng, sample_rate=16000, seconds=0.3),
            16000,
            subtype="PCM_16",
        )
        os.symlink(secret, root / "link.wav")
        with pytest.raises(AudioError, match="outside"):
            resolve_audio_path(str(root / "link.wav"), [str(root)])

    def test_a_link_swapped_in_while_reading_never_leads_outside(self, tmp_path):
        """A symbolic link flipped between a file inside and a file outside, as fast as a thread
        can: the file is checked as opened, so no read returns the outside file's bytes."""
        import threading

        root, outside = tmp_path / "root", tmp_path / "outside"
        root.mkdir()
        outside.mkdir()
        (root / "inside.wav").write_bytes(b"INSIDE")
        (outside / "secret.wav").write_bytes(b"SECRET")
        target = root / "clip.wav"
        target.write_bytes(b"INSIDE")
        stop = threading.Event()

        def flip():
            link = root / "flip.tmp"
            while not stop.is_set():
                for source in (outside / "secret.wav", root / "inside.wav"):
                    if link.is_symlink():
                        link.unlink()
                    link.symlink_to(source)
                    os.replace(link, target)

        flipper = threading.Thread(target=flip)
        flipper.start()
        results = {"inside": 0, "refused": 0}
        try:
            for _ in range(2000):
                try:
                    with open_audio_file(str(target), [str(root)]) as handle:
                        data = handle.read()
                except AudioError as exc:
                    assert "outside" in str(exc) or "no such file" in str(exc), exc
                    results["refused"] += 1
                else:
                    assert data == b"INSIDE"
                    results["inside"] += 1
        finally:
            stop.set()
            flipper.join(10)
        assert results["inside"] and results["refused"]

    def test_a_fifo_in_a_root_is_refused_without_waiting(self, tmp_path):
        os.mkfifo(tmp_path / "pipe.wav")
        with pytest.raises(AudioError, match="not a regular file"):
            open_audio_file(str(tmp_path / "pipe.wav"), [str(tmp_path)])

    def test_prefix_sibling_is_not_inside(self, tmp_path):
        (tmp_path / "root").mkdir()
        (tmp_path / "rootkit").mkdir()
        with pytest.raises(AudioError, match="outside"):
            resolve_audio_path(str(tmp_path / "rootkit" / "x.wav"), [str(tmp_path / "root")])

    def test_no_roots_means_no_path_reads(self, tmp_path):
        with pytest.raises(AudioError, match="disabled"):
            resolve_audio_path(str(tmp_path / "x.wav"), [])

    def test_inside_root_allowed(self, tmp_path):
        assert resolve_audio_path(
            str(tmp_path / "a" / ".." / "x.wav"), [str(tmp_path)]
        ) == os.path.realpath(tmp_path / "x.wav")
