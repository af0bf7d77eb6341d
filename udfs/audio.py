"""Reading and decoding audio: bytes or confined paths in, float32 samples out.

Everything here is plain Python and numpy, tested without Spark.  A path (read in
place) and the bytes of the same file go through the same decoder, so both forms of a
SQL ``audio`` argument give identical results.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import unquote

import numpy as np
import soundfile as sf

from udfs.errors import AudioError

#: Longest stretch of audio decoded from one clip, in seconds.  Longer clips
#: are cut here so that a two-hour file costs at most this much memory.
MAX_DECODE_SECONDS = 60.0

#: The lowest sample rate read. Speech needs a few kHz, and a recording is resampled to the
#: feature rate: a file claiming 1 Hz would make each byte cost seconds of audio to process.
MIN_SAMPLE_RATE = 4000

#: Most samples (all channels together) decoded from one clip: a small file can claim a huge
#: rate and many channels (60 s of eight channels of silence at 655 kHz compress to a few
#: hundred kB and would decode to 1.3 GB), so such a clip is cut sooner.  Audio up to eight
#: channels at 48 kHz or two at 192 kHz reaches MAX_DECODE_SECONDS first.
MAX_DECODE_SAMPLES = 1 << 25

#: Largest sample magnitude analysed.  A float file may hold any value: speech lies within
#: +-1 (or within the integer range, for float files written in integer scale), while the
#: features' power spectrum overflows float32 a few orders of magnitude above this.
MAX_SAMPLE_MAGNITUDE = 1e12

#: Longest path read, in bytes (Linux's PATH_MAX): a longer one names no file, and resolving a
#: string of megabytes before the roots check would hold a worker's core for minutes.
MAX_PATH_BYTES = 4096

#: libsndfile's frame count for a stream of unknown length (SF_COUNT_MAX).
UNKNOWN_FRAMES = 2**63 - 1

AUDIO_INFO_DDL = (
    "struct<sample_rate:int, channels:int, frames:bigint, duration_s:double, "
    "format:string, subtype:string, error:string>"
)


class AudioInfo(NamedTuple):
    sample_rate: int | None
    channels: int | None
    frames: int | None
    duration_s: float | None
    format: str | None
    subtype: str | None
    error: str | None

    @classmethod
    def failed(cls, reason: str) -> AudioInfo:
        return cls(None, None, None, None, None, None, reason)


def _local_path(path: str) -> str:
    """Turn a ``file:`` URI (as in a binaryFile table's ``path`` column) into a local path."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif path.startswith("file:"):
        path = path[len("file:") :]
    if not os.path.lexists(path) and "%" in path:
        path = unquote(path)
    return path


def resolve_audio_path(path: str, roots: Sequence[str]) -> str:
    """Return the real path of ``path`` if it lies inside one of ``roots``.

    Symbolic links and ``..`` are resolved before the check, so neither can
    escape a root.  Raises AudioError naming the path otherwise.
    """
    if not path:
        raise AudioError("empty path")
    if not roots:
        raise AudioError(
            f"path reads are disabled: {path!r} is not inside any of EMOTICANA_AUDIO_ROOTS "
            "(none set)"
        )
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise AudioError(
            f"path of {len(path)} characters starting {path[:80]!r} is longer than a path can be "
            f"({MAX_PATH_BYTES} bytes)"
        )
    local = _local_path(path)
    if "\0" in local:
        raise AudioError(f"{path!r} is not a path: it holds a NUL character")
    real = os.path.realpath(local)
    if _inside(real, roots):
        return real
    raise _outside(path, roots)


def _inside(real: str, roots: Sequence[str]) -> bool:
    for root in roots:
        real_root = os.path.realpath(root)
        if os.path.commonpath([real, real_root]) == real_root:
            return True
    return False


def _outside(path: str, roots: Sequence[str]) -> AudioError:
    return AudioError(
        f"{path!r} is outside the readable audio roots ({':'.join(roots)}); set "
        "EMOTICANA_AUDIO_ROOTS"
    )


def open_audio_file(path: str, roots: Sequence[str]):
    """The file ``path`` names, opened for reading (binary) once it is known to lie in a root.

    The path is checked (:func:`resolve_audio_path`), then opened, and then the *opened* file is
    checked again by where the kernel says it is: a symbolic link swapped in between the check and
    the open cannot lead outside the roots. A hard link inside a root to a file outside is the
    same file to the kernel; only someone who can write into a root can make one.
    """
    real = resolve_audio_path(path, roots)
    try:
        # O_NONBLOCK: a FIFO someone placed in a root must not hang the worker.
        descriptor = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise AudioError(f"no such file: {path!r}") from None
    except OSError as exc:
        raise AudioError(f"cannot read {path!r}: {exc.strerror}") from None
    try:
        opened = os.readlink(f"/proc/self/fd/{descriptor}")
        if not _inside(opened, roots):
            raise _outside(path, roots)
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise AudioError(f"{path!r} is a directory, not an audio file")
        if not stat.S_ISREG(mode):
            raise AudioError(f"{path!r} is not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def open_audio(source: str | bytes | bytearray | memoryview | None, roots: Sequence[str]):
    """An open ``soundfile.SoundFile`` on an ``audio`` argument, with samples to read.

    A path is opened in place (any length, nothing read yet); bytes are wrapped without a copy.
    Raises AudioError naming the problem (NULL, empty, not audio, header only, ...).
    """
    if isinstance(source, str):
        with open_audio_file(source, roots) as file:
            if os.fstat(file.fileno()).st_size == 0:
                raise AudioError("empty audio (0 bytes)")
            # libsndfile reads the checked file through a descriptor of its own.
            descriptor = os.dup(file.fileno())
        try:
            # libsndfile owns the descriptor from here: it closes it, on failure too.
            handle = _usable(sf.SoundFile(descriptor, closefd=True))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(f"not a readable audio file: {source!r}: {_reason(exc)}") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        handle = _open(source)
    elif source is None:
        raise AudioError("audio is NULL")
    else:
        raise AudioError(
            f"audio must be a path string or binary content, got {type(source).__name__}"
        )
    if handle.frames <= 0:
        handle.close()
        raise AudioError(f"no audio samples ({handle.format} header only)")
    return handle


def _open(data: bytes | bytearray | memoryview) -> sf.SoundFile:
    if not len(data):
        raise AudioError("empty audio (0 bytes)")
    try:
        handle = sf.SoundFile(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"not a readable audio file ({len(data)} bytes): {_reason(exc)}") from None
    return _usable(handle)


def _usable(handle: sf.SoundFile) -> sf.SoundFile:
    if handle.samplerate < MIN_SAMPLE_RATE:
        rate = handle.samplerate
        handle.close()
        raise AudioError(f"sample rate {rate} Hz is below {MIN_SAMPLE_RATE} Hz, too low for speech")
    if handle.frames >= UNKNOWN_FRAMES // max(handle.channels, 1):
        # A FLAC written to a pipe (ffmpeg -f flac -, flac -) leaves its length out of the
        # header; libsndfile then reports the largest count and cannot read such a file reliably.
        format_ = handle.format
        handle.close()
        raise AudioError(
            f"the {format_} header does not say how long the audio is (a file written to a pipe); "
            "write it again to a file, e.g. ffmpeg -i in.flac out.flac"
        )
    return handle


def _reason(exc: Exception) -> str:
    text = str(exc)
    # libsndfile prefixes messages with the repr of the file object; keep the reason only.
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text


def undecodable(format_: str, exc: Exception) -> AudioError:
    """The error for samples the header promised but the decoder cannot give: libsndfile's
    own reason (e.g. "Internal psf_fseek() failed.") names no cause a user can act on."""
    return AudioError(
        f"cannot decode {format_} audio, the file is probably truncated or damaged: {_reason(exc)}"
    )


def probe_audio(data: bytes) -> AudioInfo:
    """Header facts of an encoded clip, without decoding the samples."""
    with open_audio(data, ()) as handle:
        return _header(handle)


def _header(handle: sf.SoundFile) -> AudioInfo:
    frames = int(handle.frames)
    return AudioInfo(
        sample_rate=int(handle.samplerate),
        channels=int(handle.channels),
        frames=frames,
        duration_s=frames / float(handle.samplerate),
        format=handle.format,
        subtype=handle.subtype,
        error=None,
    )


def checked_samples(block: np.ndarray) -> np.ndarray:
    """``block`` of decoded samples, or AudioError for samples no feature can be computed from."""
    if not np.all(np.isfinite(block)):
        raise AudioError("audio contains NaN or infinite samples")
    peak = float(np.max(np.abs(block))) if block.size else 0.0
    if peak > MAX_SAMPLE_MAGNITUDE:
        raise AudioError(f"audio samples as large as {peak:.3g}: not a level audio can have")
    return block


def decode_audio(data: bytes, *, max_seconds: float = MAX_DECODE_SECONDS) -> tuple[np.ndarray, int]:
    """Decode an encoded clip to float32 samples.

    Parameters
    ----------
    data : bytes
        A whole WAV, FLAC, OGG (or other libsndfile-readable) file.
    max_seconds : float, keyword-only
        Decode at most this many seconds from the start.

    Returns
    -------
    y : np.ndarray [shape=(channels, frames), dtype=float32]
        Samples in [-1, 1].
    sample_rate : int
        Samples per second of ``y``.
    """
    return load_audio(data, (), max_seconds=max_seconds)


def load_audio(
    source, roots: Sequence[str], *, max_seconds: float = MAX_DECODE_SECONDS
) -> tuple[np.ndarray, int]:
    """:func:`decode_audio` of an ``audio`` argument: a path (read in place, so any size) or
    bytes."""
    with open_audio(source, roots) as handle:
        return decode_handle(handle, max_seconds=max_seconds)


def decode_handle(
    handle: sf.SoundFile, *, max_seconds: float = MAX_DECODE_SECONDS
) -> tuple[np.ndarray, int]:
    """:func:`decode_audio` of an open file, from its current position: at most ``max_seconds``
    and at most :data:`MAX_DECODE_SAMPLES` samples."""
    sample_rate = int(handle.samplerate)
    limit = min(int(max_seconds * sample_rate), MAX_DECODE_SAMPLES // max(handle.channels, 1))
    try:
        y = handle.read(frames=limit, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise undecodable(handle.format, exc) from None
    if y.shape[0] == 0:
        raise AudioError(f"no audio samples ({handle.format})")
    return np.ascontiguousarray(checked_samples(y).T), sample_rate


def audio_info(source, roots: Sequence[str]) -> AudioInfo:
    """``audio_info`` for one row: header facts, or a failed record with the reason.

    The samples are decoded too (as ``mfcc`` decodes them), so a clip whose header is
    fine but whose data is not (a truncated FLAC) reports why ``mfcc`` gives NULL.  Of a file
    longer than that, its last second is decoded as well: ``emotion`` reads a recording to the
    end, and a FLAC cut off after its first minute would otherwise look whole here.
    """
    try:
        with open_audio(source, roots) as handle:
            info = _header(handle)
            decoded = decode_handle(handle)[0].shape[1]
            if info.frames > decoded:
                tail = max(decoded, info.frames - info.sample_rate)
                try:
                    handle.seek(tail)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise undecodable(handle.format, exc) from None
                decode_handle(handle, max_seconds=1.0)
            return info
    except AudioError as exc:
        return AudioInfo.failed(str(exc))
