import os

import numpy as np
import pytest

from tests.audiogen import VARIANTS, voiced_signal, write_bad_inputs, write_clip, write_variants
from udfs.audio import (
    AudioError,
    audio_info,
    decode_audio,
    probe_audio,
    read_audio_source,
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
        source = read_audio_source(str(paths[name]), [str(tmp_path)])
        decode_audio(source)


def test_missing_null_and_wrong_type(tmp_path):
    assert "no such file" in audio_info(str(tmp_path / "nope.wav"), [str(tmp_path)]).error
    assert audio_info(None, [str(tmp_path)]).error == "audio is NULL"
    assert "empty path" in audio_info("", [str(tmp_path)]).error
    assert "path string or binary" in audio_info(42, [str(tmp_path)]).error


def test_path_and_bytes_decode_identically(variants, tmp_path):
    path = variants["pcm24_44k_stereo.wav"]
    from_path = decode_audio(read_audio_source(str(path), [str(tmp_path)]))
    from_bytes = decode_audio(read_audio_source(path.read_bytes(), []))
    np.testing.assert_array_equal(from_path[0], from_bytes[0])
    assert audio_info(str(path), [str(tmp_path)]) == audio_info(path.read_bytes(), [])


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
                    data = read_audio_source(str(target), [str(root)])
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
            read_audio_source(str(tmp_path / "pipe.wav"), [str(tmp_path)])

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
