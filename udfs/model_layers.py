"""The Keras layers a saved emotion model holds, registered so that ``load_model`` finds them.

They belong to the model format, not to training: a ``model.keras`` file names them, so
inference imports this module (through :func:`udfs.model_format.load_keras_model_file`) to
load one.  Augmentation layers act only when called with ``training=True``, so a loaded
model is deterministic; :class:`WarpVariants`, :class:`VariantMean` and
:class:`PriorCorrection` are the inference-time wrappers the trainer puts around a network.
"""

from __future__ import annotations

import keras
import librosa
import numpy as np
import scipy.fft
from keras import layers, ops

from udfs.features import DEFAULT_FEATURES, PITCH_ROWS, FeatureConfig

#: Registered under this package name (it is part of the saved files: do not rename).
_PACKAGE = "emoticana"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomTimeShift(layers.Layer):
    """Circularly shift each example along time by up to ``max_shift`` frames (training only).

    Speech is centred in a zero-padded window by the feature code, so the
    position of the speech carries no emotion; shifting stops the network from
    learning one.  Input shape ``(batch, frames, channels)``.

    Parameters
    ----------
    max_shift : int
        Largest shift in frames, either direction.
    seed : int or None
        Seed of the layer's random stream.
    """

    def __init__(self, max_shift: int = 30, *, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_shift = int(max_shift)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.max_shift <= 0:
            return x
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        shift = keras.random.randint(
            (batch, 1), -self.max_shift, self.max_shift + 1, seed=self.seed_generator
        )
        index = ops.mod(ops.arange(frames)[None, :] - shift, frames)
        return ops.take_along_axis(x, ops.expand_dims(index, -1), axis=1)

    def get_config(self):
        return {**super().get_config(), "max_shift": self.max_shift, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SpecAugment(layers.Layer):
    """Zero random bands of frames and of coefficients in each example (training only).

    Applied after standardisation, so zero is the training mean and a mask
    removes information rather than injecting an extreme value.  Input shape
    ``(batch, frames, coefficients)``.

    Parameters
    ----------
    time_masks, time_width : int
        Number of time masks and the largest width of each, in frames.
    freq_masks, freq_width : int
        Number of coefficient masks and the largest width of each.
    seed : int or None
        Seed of the layer's random stream.
    """

    def __init__(
        self,
        time_masks: int = 2,
        time_width: int = 30,
        freq_masks: int = 2,
        freq_width: int = 6,
        *,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.time_masks, self.time_width = int(time_masks), int(time_width)
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _keep(self, batch, length, count, width):
        position = ops.arange(length)[None, :]
        keep = ops.ones((batch, length), dtype="bool")
        for _ in range(count):
            size = keras.random.randint((batch, 1), 0, width + 1, seed=self.seed_generator)
            start = keras.random.randint((batch, 1), 0, length - width, seed=self.seed_generator)
            inside = ops.logical_and(position >= start, position < start + size)
            keep = ops.logical_and(keep, ops.logical_not(inside))
        return ops.cast(keep, self.compute_dtype)

    def call(self, x, training=None):
        if not training:
            return x
        batch, frames, coefficients = ops.shape(x)[0], x.shape[1], x.shape[2]
        keep_time = self._keep(batch, frames, self.time_masks, self.time_width)
        keep_coef = self._keep(batch, coefficients, self.freq_masks, self.freq_width)
        return x * keep_time[:, :, None] * keep_coef[:, None, :]

    def get_config(self):
        return {
            **super().get_config(),
            "time_masks": self.time_masks,
            "time_width": self.time_width,
            "freq_masks": self.freq_masks,
            "freq_width": self.freq_width,
            "seed": self.seed,
        }


def _interpolation_matrix(positions: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation as a matrix [shape=(len(positions), length)]: row i reads
    ``x[positions[i]]``.

    Positions outside ``[0, length - 1]`` read zero.
    """
    weights = np.maximum(0.0, 1.0 - np.abs(np.arange(length)[None, :] - positions[:, None]))
    weights[(positions < 0) | (positions > length - 1)] = 0.0
    return weights


def mel_warp_matrices(factors, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Matrices that warp the frequency axis of an MFCC vector, one per factor.

    The ``n_mfcc`` coefficients are taken back to the (cepstrally smoothed) log-mel
    spectrum with the inverse orthonormal DCT, the spectrum is read at frequency
    ``f / factor`` for each mel band centre ``f`` (so a factor above 1 moves formants
    up, like a shorter vocal tract), and the DCT is applied again.  A factor of 1 gives
    the identity.

    Parameters
    ----------
    factors : array-like [shape=(k,)]
        Frequency scale factors, around 1.
    config : FeatureConfig, keyword-only
        The features the matrices act on (``n_mfcc``, ``n_mels``, ``fmin``, ``fmax``).

    Returns
    -------
    np.ndarray [shape=(k, n_rows, n_rows), dtype=float32]
        ``warped = matrix @ features`` for a feature matrix of shape ``config.shape``.
        Prosody rows (``config.prosody_rows``) pass through unchanged: a vocal tract of
        another length moves the formants, not the pitch.
    """
    dct = scipy.fft.dct(np.eye(config.n_mels), type=2, norm="ortho", axis=0)[: config.n_mfcc]
    centres = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=config.fmax)[1:-1]
    bands = np.arange(config.n_mels, dtype=np.float64)
    matrices = []
    for factor in np.asarray(factors, dtype=np.float64):
        source = np.interp(centres / factor, centres, bands)  # clamped at the edge bands
        matrix = np.eye(config.n_rows)
        matrix[: config.n_mfcc, : config.n_mfcc] = (
            dct @ _interpolation_matrix(source, config.n_mels) @ dct.T
        )
        matrices.append(matrix)
    return np.stack(matrices).astype(np.float32)


def stretch_matrices(rates, n_frames: int) -> np.ndarray:
    """Matrices that resample ``n_frames`` frames about the centre frame, one per rate.

    Output frame ``t`` reads input frame ``c + (t - c) * rate`` (``c`` the centre):
    a rate above 1 speeds speech up, below 1 slows it down; frames read from
    outside the clip are zero.

    Returns
    -------
    np.ndarray [shape=(k, n_frames, n_frames), dtype=float32]
    """
    centre = (n_frames - 1) / 2
    frames = np.arange(n_frames, dtype=np.float64)
    return np.stack(
        [
            _interpolation_matrix(centre + (frames - centre) * rate, n_frames)
            for rate in np.asarray(rates, dtype=np.float64)
        ]
    ).astype(np.float32)


def _layer_warp_matrices(layer, factors, *, n_rows: int) -> np.ndarray:
    """:func:`mel_warp_matrices` for a layer that records its features as ``n_mels``, ``fmin``,
    ``fmax``, ``prosody_rows``."""
    config = FeatureConfig(
        n_mfcc=n_rows - layer.prosody_rows,
        n_mels=layer.n_mels,
        fmin=layer.fmin,
        fmax=layer.fmax,
        pitch=layer.prosody_rows > 0,
    )
    return mel_warp_matrices(factors, config=config)


#: Warp factors and stretch rates are drawn from this many evenly spaced values.
_AUGMENT_STEPS = 21


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MelWarp(layers.Layer):
    """Warp the spectral envelope's frequency axis by a random factor per example (training only).

    Vocal tract length perturbation on MFCC input: a speaker with a shorter vocal
    tract has every formant higher by roughly a constant factor.  Acts on the raw
    coefficients (before standardisation), input shape ``(batch, n_mfcc, frames)``.

    Parameters
    ----------
    max_warp : float
        Factors are drawn from ``[1 - max_warp, 1 + max_warp]``.
    n_mels, fmin, fmax, prosody_rows : keyword-only
        The mel filterbank the coefficients came from and how many prosody rows follow
        them (:class:`FeatureConfig`); the prosody rows are left alone.
    seed : int or None
        Seed of the layer's random stream.
    """

    def __init__(
        self,
        max_warp: float = 0.1,
        *,
        n_mels: int = DEFAULT_FEATURES.n_mels,
        fmin: float = DEFAULT_FEATURES.fmin,
        fmax: float = DEFAULT_FEATURES.fmax,
        prosody_rows: int = 0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_warp, self.n_mels, self.fmin, self.fmax = (
            float(max_warp),
            int(n_mels),
            float(fmin),
            float(fmax),
        )
        self.prosody_rows = int(prosody_rows)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        factors = np.linspace(1 - self.max_warp, 1 + self.max_warp, _AUGMENT_STEPS)
        self.matrices = _layer_warp_matrices(self, factors, n_rows=int(input_shape[1]))

    def call(self, x, training=None):
        if not training or self.max_warp <= 0:
            return x
        choice = keras.random.randint(
            (ops.shape(x)[0],), 0, _AUGMENT_STEPS, seed=self.seed_generator
        )
        return ops.einsum(
            "bij,bjt->bit", ops.take(ops.convert_to_tensor(self.matrices), choice, axis=0), x
        )

    def get_config(self):
        return {
            **super().get_config(),
            "max_warp": self.max_warp,
            "n_mels": self.n_mels,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "prosody_rows": self.prosody_rows,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TimeStretch(layers.Layer):
    """Stretch each example in time about its centre by a random rate (training only).

    Tempo varies between speakers; the features centre the speech, so stretching
    about the centre keeps it centred.  Input shape ``(batch, coefficients, frames)``
    after standardisation (frames read from outside the clip are the training mean).

    Parameters
    ----------
    max_stretch : float
        Rates are drawn from ``[1 - max_stretch, 1 + max_stretch]``.
    seed : int or None
        Seed of the layer's random stream.
    """

    def __init__(self, max_stretch: float = 0.15, *, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_stretch = float(max_stretch)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        rates = np.linspace(1 - self.max_stretch, 1 + self.max_stretch, _AUGMENT_STEPS)
        self.matrices = stretch_matrices(rates, int(input_shape[2]))

    def call(self, x, training=None):
        if not training or self.max_stretch <= 0:
            return x
        choice = keras.random.randint(
            (ops.shape(x)[0],), 0, _AUGMENT_STEPS, seed=self.seed_generator
        )
        return ops.einsum(
            "bcs,bts->bct", x, ops.take(ops.convert_to_tensor(self.matrices), choice, axis=0)
        )

    def get_config(self):
        return {**super().get_config(), "max_stretch": self.max_stretch, "seed": self.seed}


def _row_selector(rows: int, row: int) -> np.ndarray:
    """float32 ``(1, rows, 1)``: 1 at ``row``, 0 elsewhere; times a ``(batch, 1, 1)`` amount it
    moves that row alone."""
    selector = np.zeros((1, rows, 1), dtype=np.float32)
    selector[0, row, 0] = 1.0
    return selector


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PitchShift(layers.Layer):
    """Move each example's absolute pitch row by a random number of octaves (training only).

    Speakers differ in register: a voice pitched higher by ``k`` octaves has ``k`` more in
    the absolute log2 F0 row on every voiced frame, the same voiced flag and the same
    relative contour (that row is free of register already).  So the absolute row alone is
    shifted, on voiced frames, and the network hears the same utterance as if from speakers
    of other registers.  Acts on the raw rows (before standardisation), input shape
    ``(batch, rows, frames)``, whose last ``prosody_rows`` rows are
    :func:`udfs.features.pitch_rows`' (voiced flag, relative, absolute, ...).

    Parameters
    ----------
    max_shift : float
        Shifts are drawn uniformly from ``[-max_shift, max_shift]`` octaves.
    prosody_rows : int, keyword-only
        How many prosody rows end the input; at least :data:`udfs.features.PITCH_ROWS`.
    seed : int or None
        Seed of the layer's random stream.
    """

    def __init__(
        self,
        max_shift: float,
        *,
        prosody_rows: int = PITCH_ROWS,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if prosody_rows < PITCH_ROWS:
            raise ValueError(
                f"PitchShift needs the pitch rows (prosody_rows >= {PITCH_ROWS}), "
                f"got prosody_rows={prosody_rows}"
            )
        self.max_shift, self.prosody_rows = float(max_shift), int(prosody_rows)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        rows = int(input_shape[1])
        voiced = rows - self.prosody_rows
        # One-hot column picking the absolute row; the shift lands there only.
        self.absolute = _row_selector(rows, voiced + 2)
        self.voiced_row = voiced

    def call(self, x, training=None):
        if not training or self.max_shift <= 0:
            return x
        shift = keras.random.uniform(
            (ops.shape(x)[0], 1, 1), -self.max_shift, self.max_shift, seed=self.seed_generator
        )
        voiced = x[:, self.voiced_row : self.voiced_row + 1, :]
        return x + ops.convert_to_tensor(self.absolute) * shift * voiced

    def get_config(self):
        return {
            **super().get_config(),
            "max_shift": self.max_shift,
            "prosody_rows": self.prosody_rows,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LevelShift(layers.Layer):
    """Make each example louder or quieter by a random number of decibels (training only).

    A clip scaled by ``g`` dB has ``g`` more in every mel band's log power, and the same
    everything else: ``power_to_db``'s floor (``top_db``), the silence trim and the voiced
    flag are all relative to the clip's loudest frame.  The orthonormal DCT turns a constant
    ``g`` over the bands into ``g * sqrt(n_mels)`` on ``c0`` alone, so that is what this layer
    adds, one draw per clip, to the raw rows (before standardisation), input shape
    ``(batch, rows, frames)``.

    Parameters
    ----------
    max_db : float
        Gains are drawn uniformly from ``[-max_db, max_db]`` dB.
    n_mels : int, keyword-only
        Mel bands the coefficients were computed from (``FeatureConfig.n_mels``).
    seed : int or None
        Seed of the layer's random stream.
    """

    def __init__(
        self,
        max_db: float,
        *,
        n_mels: int = DEFAULT_FEATURES.n_mels,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_db, self.n_mels = float(max_db), int(n_mels)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.c0 = _row_selector(int(input_shape[1]), 0) * np.float32(np.sqrt(self.n_mels))

    def call(self, x, training=None):
        if not training or self.max_db <= 0:
            return x
        gain = keras.random.uniform(
            (ops.shape(x)[0], 1, 1), -self.max_db, self.max_db, seed=self.seed_generator
        )
        return x + ops.convert_to_tensor(self.c0) * gain

    def get_config(self):
        return {
            **super().get_config(),
            "max_db": self.max_db,
            "n_mels": self.n_mels,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WarpVariants(layers.Layer):
    """The input, then fixed frequency warps of it, stacked on the batch axis (inference-time
    averaging).

    Input ``(batch, n_mfcc, frames)`` raw coefficients; output
    ``((1 + len(factors)) * batch, n_mfcc, frames)``, variant-major: rows
    ``[0, batch)`` are the input itself, then one block per factor.  The warps
    are :func:`mel_warp_matrices` at ``factors``.

    Parameters
    ----------
    factors : sequence of float
        Warp factors, around 1.
    n_mels, fmin, fmax, prosody_rows : keyword-only
        As :class:`MelWarp`'s.
    """

    def __init__(
        self,
        factors=(),
        *,
        n_mels: int = DEFAULT_FEATURES.n_mels,
        fmin: float = DEFAULT_FEATURES.fmin,
        fmax: float = DEFAULT_FEATURES.fmax,
        prosody_rows: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.factors = tuple(float(f) for f in factors)
        self.n_mels, self.fmin, self.fmax = int(n_mels), float(fmin), float(fmax)
        self.prosody_rows = int(prosody_rows)

    def build(self, input_shape):
        # Factor 1 is the identity: the first block is the input itself.
        self.matrices = _layer_warp_matrices(self, (1.0, *self.factors), n_rows=int(input_shape[1]))

    def call(self, x):
        variants = ops.einsum("kij,bjt->kbit", ops.convert_to_tensor(self.matrices), x)
        return ops.reshape(variants, (-1, x.shape[1], x.shape[2]))

    def get_config(self):
        return {
            **super().get_config(),
            "factors": list(self.factors),
            "n_mels": self.n_mels,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "prosody_rows": self.prosody_rows,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VariantMean(layers.Layer):
    """Mean over the ``variants`` blocks that :class:`WarpVariants` stacked:
    ``(variants * batch, C)`` to ``(batch, C)``."""

    def __init__(self, variants: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.variants = int(variants)

    def call(self, x):
        return ops.mean(ops.reshape(x, (self.variants, -1, x.shape[-1])), axis=0)

    def get_config(self):
        return {**super().get_config(), "variants": self.variants}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PriorCorrection(layers.Layer):
    """Reweight class probabilities by fixed factors and renormalise: ``p * w / sum(p * w)``.

    With ``w`` the inverse of the training set's class frequencies, a network's posteriors
    under the training priors become posteriors for equally likely classes (Bayes' rule),
    so the most probable class is the one that maximises unweighted accuracy.
    """

    def __init__(self, factors=(), **kwargs):
        super().__init__(**kwargs)
        self.factors = tuple(float(f) for f in factors)

    def call(self, x):
        weighted = x * ops.convert_to_tensor(self.factors, dtype=x.dtype)
        return weighted / ops.sum(weighted, axis=-1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "factors": list(self.factors)}


def tempered(probabilities, temperature):
    """``probabilities ** (1 / temperature)`` renormalised (``temperature``: one number, or one
    per row with a trailing axis of 1)."""
    return ops.softmax(ops.log(ops.maximum(probabilities, 1e-12)) / temperature, axis=-1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Temperature(layers.Layer):
    """Soften (``temperature`` > 1) or sharpen class probabilities: ``p ** (1 / T)`` renormalised.

    The same as dividing a softmax's logits by ``T`` (temperature scaling, Guo et al. 2017),
    written on probabilities because the saved model's output is already a mean of softmaxes.
    The trainer fits ``T`` on held-out predictions so that confidence means what it says.
    """

    def __init__(self, temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, x):
        return tempered(x, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


def log_state_distance(states, mean, variance):
    """How far each row of encoder ``states`` lies from the training speech: the log of the mean
    square of the states standardised by the training states' ``mean`` and ``variance``.  Works
    on arrays and tensors alike (the trainer's held-out rows and the saved model)."""
    standardised = (states - mean) / ops.sqrt(ops.maximum(variance, 1e-12))
    return ops.log(ops.maximum(ops.mean(ops.square(standardised), axis=-1), 1e-12))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DistanceTemperature(layers.Layer):
    """:class:`Temperature`, raised on audio far from the speech the model learnt from:
    ``T = temperature * exp(slope * max(0, log_state_distance - log_reference))`` per row, on
    ``[probabilities, encoder states]``.  ``mean`` and ``variance`` are the training states';
    ``log_reference`` the distance most training clips stay within (``training.calibration``).
    """

    def __init__(
        self,
        temperature: float = 1.0,
        slope: float = 0.0,
        log_reference: float = 0.0,
        mean=(),
        variance=(),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.temperature = float(temperature)
        self.slope = float(slope)
        self.log_reference = float(log_reference)
        self.mean = tuple(float(v) for v in mean)
        self.variance = tuple(float(v) for v in variance)

    def call(self, inputs):
        probabilities, states = inputs
        mean = ops.convert_to_tensor(self.mean, dtype=states.dtype)
        variance = ops.convert_to_tensor(self.variance, dtype=states.dtype)
        excess = ops.maximum(log_state_distance(states, mean, variance) - self.log_reference, 0.0)
        temperature = self.temperature * ops.exp(self.slope * excess)
        return tempered(probabilities, ops.expand_dims(temperature, -1))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "slope": self.slope,
            "log_reference": self.log_reference,
            "mean": list(self.mean),
            "variance": list(self.variance),
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EncoderFrontEnd(layers.Layer):
    """The speech encoder's input from a feature matrix (``udfs.speech_encoder``): the cepstral
    rows back to a smoothed log-mel spectrum (``idct``), mapped to the encoder's bands
    (``mel_map``, offset in its last row), every clip's speech frames set to ``level_db`` of
    band-sum power, the window's padding (frames at the 80 dB floor) silent, and the middle
    ``frames`` frames: ``(batch, rows, n) -> (batch, frames, bands)`` of mel power."""

    def __init__(self, idct, mel_map, level_db=0.0, n_mfcc=40, frames=160, **kwargs):
        super().__init__(**kwargs)
        self.idct = np.asarray(idct, dtype=np.float32)
        self.mel_map = np.asarray(mel_map, dtype=np.float32)
        self.level_db = float(level_db)
        self.n_mfcc = int(n_mfcc)
        self.frames = int(frames)

    def call(self, x):
        cepstra = ops.transpose(x[:, : self.n_mfcc, :], (0, 2, 1))
        db = ops.matmul(cepstra, ops.convert_to_tensor(self.idct))
        bands = ops.matmul(db, ops.convert_to_tensor(self.mel_map[:-1])) + self.mel_map[-1]
        frame_db = ops.max(db, axis=-1, keepdims=True)
        loudest = ops.max(frame_db, axis=1, keepdims=True)
        speech = ops.cast(frame_db > loudest - 60.0, x.dtype)
        # The window's padding is at the features' floor (the loudest value less 80 dB, and never
        # under -100 dB), which a flat spectrum keeps exactly; the smoothing lowers the loudest
        # value a little, so the floor is allowed 6 dB.
        padding = frame_db <= ops.maximum(loudest - 80.0, -100.0) + 6.0
        power = ops.power(10.0, bands / 10.0)
        energy = ops.sum(ops.sum(power, axis=-1, keepdims=True) * speech, axis=1, keepdims=True)
        energy = energy / ops.maximum(ops.sum(speech, axis=1, keepdims=True), 1.0)
        gain_db = self.level_db - 10.0 * ops.log(ops.maximum(energy, 1e-12)) / np.log(10.0)
        power = ops.where(padding, 0.0, power * ops.power(10.0, gain_db / 10.0))
        start = (x.shape[-1] - self.frames) // 2
        return power[:, start : start + self.frames, :]

    def get_config(self):
        return {
            **super().get_config(),
            "idct": self.idct.tolist(),
            "mel_map": self.mel_map.tolist(),
            "level_db": self.level_db,
            "n_mfcc": self.n_mfcc,
            "frames": self.frames,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SpeechFrameStatistics(layers.Layer):
    """Mean and standard deviation over time of encoder states, taken over the frames that are
    not the window's padding, on ``[front end output, states]``: ``(batch, frames, bands)`` and
    ``(batch, frames, units)`` to ``(batch, 2 * units)``, the means first.

    :class:`EncoderFrontEnd` gives the padding as silent frames (zero power); a short clip's
    states would otherwise be diluted by silence in proportion to how short it is (the LSTMs
    still run through the leading padding: only the statistics leave it out).  A clip without
    a frame of sound gives zeros.  ``epsilon`` is added to the variance before its square root,
    which a layer trained through needs (the root of 0 has no gradient)."""

    def __init__(self, epsilon: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        power, states = inputs
        sound = ops.cast(ops.sum(power, axis=-1, keepdims=True) > 0.0, states.dtype)
        count = ops.maximum(ops.sum(sound, axis=1), 1.0)
        mean = ops.sum(states * sound, axis=1) / count
        spread = ops.sum(ops.square(states - ops.expand_dims(mean, 1)) * sound, axis=1) / count
        return ops.concatenate([mean, ops.sqrt(ops.maximum(spread, 0.0) + self.epsilon)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}

    def compute_output_shape(self, input_shape):
        return (input_shape[1][0], 2 * input_shape[1][-1])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LogLinearFusion(layers.Layer):
    """Two probability vectors as one: ``softmax(log p + weight * log q)`` (a product of experts,
    the second one's vote weighted)."""

    def __init__(self, weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs):
        p, q = inputs
        logits = ops.log(ops.maximum(p, 1e-12)) + self.weight * ops.log(ops.maximum(q, 1e-12))
        return ops.softmax(logits, axis=-1)

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}
