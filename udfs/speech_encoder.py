"""A pretrained speech encoder, run on the feature matrix inside the model.

Four acted corpora teach a network trained from scratch what their recordings share more than
what emotion sounds like elsewhere.  A recurrent encoder trained on thousands of speakers in
everyday recordings carries voice quality, effort and rhythm learnt from far more voices: the
mean and spread of its layers' states over a clip's frames, fed to a small head, recognise a
corpus never heard better than the network does (docs/model-history.md).  The encoder is
Resemblyzer's voice encoder (Apache-2.0; a three-layer LSTM of 256 units on 40 mel bands at
10 ms frames, trained for speaker verification on LibriSpeech and VoxCeleb 1 and 2), whose
weights the ``Resemblyzer`` wheel carries and ``make venv`` installs without its other
dependencies: they are read here without torch, and saved into the model file, so inference
needs neither the package nor its file.

The encoder reads its mel spectrum from the feature matrix's cepstral rows, so there is still
one feature implementation and ``emotion_scores(mfcc(content))`` sees what ``emotion(content)``
sees: :class:`udfs.model_layers.EncoderFrontEnd` undoes the DCT (the 40 coefficients give a
smoothed 64-band log-mel spectrum), maps the 64 bands to the encoder's 40 with a linear map
fitted on synthetic voices (:func:`encoder_mel_map`), sets every clip's speech to one level (the
encoder was trained on level-normalised audio, and users' levels are arbitrary), and gives the
encoder the middle 1.6 s of the 3 s window, the length of the stretches it was trained on.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import pickle
import struct
from pathlib import Path

import numpy as np

from udfs.errors import ConfigError
from udfs.features import DEFAULT_FEATURES, FeatureConfig

#: The wheel that carries the weights (pinned in encoder-weights.txt), and the file in it.
PACKAGE = "resemblyzer"
CHECKPOINT = "pretrained.pt"
LAYERS = 3
UNITS = 256
BANDS = 40
#: Frames of the feature matrix the encoder reads: the middle 160 (1.6 s) of 301.
PARTIAL_FRAMES = 160
#: The encoder's front end (Resemblyzer's): 25 ms Hann windows every 10 ms, 40 Slaney mel bands
#: of power over 0-8 kHz, audio at -30 dBFS.
ENCODER_N_FFT = 400
#: The mean over speech frames of the 40 bands' summed mel power (dB) of speech at -30 dBFS, the
#: level the encoder was trained at: the median over 40 clips of the four corpora (spread
#: 0.2 dB).  Synthetic voices, brighter than speech, would put it 4 dB lower.
SPEECH_LEVEL_DB = -4.3

_TORCH_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


class EncoderUnavailable(ConfigError):
    """The encoder's weights are not installed or not readable."""


def checkpoint_path() -> Path:
    """The installed ``pretrained.pt``, found without importing the package (which needs torch)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / CHECKPOINT
        if path.is_file():
            return path
    raise EncoderUnavailable(
        "the speech encoder's weights are not installed: pip install --no-deps -r "
        "encoder-weights.txt (make venv does)"
    )


def read_legacy_checkpoint(path: Path) -> dict:
    """The objects of a torch checkpoint in the legacy (pre-1.6, not zip) format, every tensor
    as a numpy array, read without torch.

    The format is five pickles in a row: a magic number, the protocol version, system
    information, the object (tensors refer to storages by key), the storage keys in file order;
    then each storage as its element count (little-endian int64) and its raw elements.
    """
    storages: dict[str, list] = {}
    tensors: list[tuple] = []

    def rebuild(storage, offset, size, stride, *_):
        tensors.append((storage, offset, tuple(size), tuple(stride)))
        return ("tensor", len(tensors) - 1)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module.startswith("torch") and name in _TORCH_DTYPES:
                return name
            if module.startswith("torch") and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
                return rebuild
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected object in checkpoint: {module}.{name}")

        def persistent_load(self, pid):
            _, kind, key = pid[:3]
            storages.setdefault(key, [kind, None])
            return key

    def materialise(obj):
        if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "tensor":
            key, offset, size, stride = tensors[obj[1]]
            data = storages[key][1]
            end = offset + sum((n - 1) * step for n, step in zip(size, stride)) + 1
            if min(size, default=1) > 0 and (offset < 0 or end > data.size):
                raise ValueError(f"a tensor reaches past its storage ({end} > {data.size})")
            return np.lib.stride_tricks.as_strided(
                data[offset:], shape=size, strides=[s * data.itemsize for s in stride]
            ).copy()
        if isinstance(obj, dict):
            return {k: materialise(v) for k, v in obj.items()}
        return obj

    try:
        with open(path, "rb") as handle:
            for _ in range(3):  # magic number, protocol version, system information
                Unpickler(handle).load()
            result = Unpickler(handle).load()
            for key in Unpickler(handle).load():
                dtype = np.dtype(_TORCH_DTYPES[storages[key][0]])
                count = struct.unpack("<q", handle.read(8))[0]
                storages[key][1] = np.frombuffer(handle.read(count * dtype.itemsize), dtype=dtype)
        return materialise(result)
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        ValueError,
        TypeError,
        struct.error,
    ) as exc:
        raise EncoderUnavailable(
            f"{path} is not a readable legacy torch checkpoint: {exc}"
        ) from None


def weights_source() -> str:
    """Which weights a model built now holds, for its manifest: the wheel's version and file."""
    import importlib.metadata

    return f"Resemblyzer {importlib.metadata.version(PACKAGE)} {CHECKPOINT}"


@functools.lru_cache(maxsize=1)
def encoder_weights() -> dict[str, np.ndarray]:
    """The LSTM's tensors by torch's names (``lstm.weight_ih_l0``...)."""
    state = read_legacy_checkpoint(checkpoint_path()).get("model_state")
    if not isinstance(state, dict) or "lstm.weight_ih_l0" not in state:
        raise EncoderUnavailable(f"{checkpoint_path()} holds no voice encoder state")
    return state


def _synthetic_voice(rng: np.random.Generator, config: FeatureConfig) -> np.ndarray:
    """Three seconds of something voice-like: a gliding sawtooth with breath noise through five
    random resonances, with a syllable-like envelope, at a random level."""
    import scipy.signal

    n = int(config.sample_rate * 3)
    t = np.arange(n) / config.sample_rate
    f0 = rng.uniform(70, 400) * np.exp(0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / config.sample_rate
    source = scipy.signal.sawtooth(phase) + rng.uniform(0, 1) * rng.standard_normal(n)
    poles = [
        pole
        for radius, angle in zip(rng.uniform(0.7, 0.98, 5), rng.uniform(0.05, 3.0, 5))
        for pole in (radius * np.exp(1j * angle), radius * np.exp(-1j * angle))
    ]
    y = scipy.signal.lfilter([1.0], np.real(np.poly(poles)), source)
    y *= np.abs(np.sin(np.pi * t * rng.uniform(0.5, 4))) ** rng.uniform(0.2, 2)
    return (y / (np.abs(y).max() + 1e-9) * 10 ** (rng.uniform(-30, 0) / 20)).astype(np.float32)


def smoothed_mel_db(cepstra: np.ndarray, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """The log-mel spectrum the first ``n_mfcc`` rows encode (inverse orthonormal DCT, the
    higher coefficients taken as 0): ``(..., n_mfcc, frames)`` to ``(..., frames, n_mels)``."""
    return np.swapaxes(cepstra, -1, -2) @ idct_matrix(config)


def idct_matrix(config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """``[n_mfcc, n_mels]``: cepstral coefficients to the log-mel spectrum they encode."""
    import scipy.fft

    # Row k is the k-th orthonormal DCT-II basis vector over the bands: the DCT matrix's rows.
    return scipy.fft.dct(np.eye(config.n_mels), type=2, norm="ortho", axis=0)[
        : config.n_mfcc
    ].astype(np.float32)


@functools.lru_cache(maxsize=4)
def encoder_mel_map(config: FeatureConfig = DEFAULT_FEATURES, *, clips: int = 300):
    """The least-squares map from :func:`smoothed_mel_db` to the encoder's 40-band mel power in
    dB, fitted on synthetic voices (so that it needs no corpus and is the same on every machine):
    ``[n_mels + 1, 40]``, the last row the offset.
    """
    import librosa

    from udfs.features import canonical_clip, mfcc_matrix

    rng = np.random.default_rng(0)
    inputs, targets = [], []
    for _ in range(clips):
        clip = canonical_clip(_synthetic_voice(rng, config), config.sample_rate, config=config)
        db = smoothed_mel_db(mfcc_matrix(clip, config=config), config)
        power = librosa.feature.melspectrogram(
            y=clip,
            sr=config.sample_rate,
            n_fft=ENCODER_N_FFT,
            hop_length=config.hop_length,
            n_mels=BANDS,
        ).T
        speech = db.max(axis=1) > db.max() - 60.0
        inputs.append(db[speech])
        targets.append(10 * np.log10(np.maximum(power[speech], 1e-10)))
    x = np.concatenate(inputs)
    x = np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1)
    matrix, *_ = np.linalg.lstsq(x, np.concatenate(targets), rcond=None)
    return matrix.astype(np.float32)


def build_encoder(config: FeatureConfig = DEFAULT_FEATURES, *, frames: bool = False):
    """A frozen Keras model from feature matrices ``(batch, rows, frames)`` to each LSTM layer's
    mean state and its standard deviation over the frames of the middle :data:`PARTIAL_FRAMES`
    that are not the window's padding (:class:`SpeechFrameStatistics`), ``(batch, 2 * LAYERS *
    UNITS)``.  With ``frames``, also the front end's output ``(batch, PARTIAL_FRAMES, bands)``
    (zero power marks the padding) and every frame's states of the layers side by side,
    ``(batch, PARTIAL_FRAMES, LAYERS * UNITS)``: what the temporal head reads
    (:func:`training.encoder_head.fit_temporal_head`)."""
    import keras

    from udfs.model_layers import EncoderFrontEnd, SpeechFrameStatistics

    weights = encoder_weights()
    matrix = encoder_mel_map(config)
    inputs = keras.Input(shape=config.shape, name="mfcc")
    x = EncoderFrontEnd(
        idct=idct_matrix(config).tolist(),
        mel_map=matrix.tolist(),
        level_db=SPEECH_LEVEL_DB,
        n_mfcc=config.n_mfcc,
        frames=PARTIAL_FRAMES,
        name="encoder_front_end",
    )(inputs)
    power = x
    statistics = []
    sequences = []
    lstms = []
    for layer in range(LAYERS):
        lstm = keras.layers.LSTM(UNITS, return_sequences=True, name=f"encoder_lstm{layer + 1}")
        x = lstm(x)
        lstms.append((lstm, layer))
        sequences.append(x)
        statistics.append(SpeechFrameStatistics(name=f"encoder_statistics{layer + 1}")([power, x]))
    outputs = keras.layers.Concatenate(name="encoder_states")(statistics)
    if frames:
        outputs = [outputs, power, keras.layers.Concatenate(name="encoder_frames")(sequences)]
    model = keras.Model(inputs, outputs, name="speech_encoder")
    for lstm, layer in lstms:
        # Keras's gate order (input, forget, cell, output) is torch's; torch has two biases.
        lstm.set_weights(
            [
                weights[f"lstm.weight_ih_l{layer}"].T,
                weights[f"lstm.weight_hh_l{layer}"].T,
                weights[f"lstm.bias_ih_l{layer}"] + weights[f"lstm.bias_hh_l{layer}"],
            ]
        )
    model.trainable = False
    return model


@functools.lru_cache(maxsize=1)
def _cached_encoder():
    return build_encoder()


@functools.lru_cache(maxsize=1)
def _cached_frame_encoder():
    return build_encoder(frames=True)


def encoder_frames(x: np.ndarray, *, batch_size: int = 128) -> list[np.ndarray]:
    """The pooled states, the front end's power and every frame's states (:func:`build_encoder`
    with ``frames``) for feature matrices ``x`` (one encoder per process)."""
    outputs = _cached_frame_encoder().predict(
        np.asarray(x, np.float32), batch_size=batch_size, verbose=0
    )
    return [np.asarray(output) for output in outputs]


def encoder_states(x: np.ndarray, *, batch_size: int = 128) -> np.ndarray:
    """:func:`build_encoder`'s output for feature matrices ``x`` (one encoder per process)."""
    encoder = _cached_encoder()
    return np.asarray(encoder.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0))
