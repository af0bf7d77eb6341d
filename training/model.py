"""The emotion CNN: six 1-D convolutions over time on the (43, 301) feature matrix (40 MFCCs, 3 prosody rows).

The model takes exactly what :func:`udfs.features.mfcc_features` returns, shape
``(n_mfcc, n_frames)`` float32, and gives softmax probabilities in the order of
:data:`udfs.labels.EMOTIONS`.  Everything inference needs lives inside the saved
``.keras`` file:

* per-coefficient standardisation is a ``keras.layers.Normalization`` layer whose
  mean/variance are set from training features by :func:`adapt_normalisation`
  (call it once, before ``fit``);
* augmentation (vocal-tract-length warping of the spectral envelope, a shift
  of the absolute pitch (register), tempo stretch, random circular time shift,
  SpecAugment-style time and coefficient masking, gaussian noise) are layers
  that act only when ``training=True``, so ``predict`` and a loaded model are
  deterministic.

No augmentation lives outside the model (mixup on batches was tried and did
not help in cross-validation), so training needs integer labels only.

Typical use::

    model = build_model()
    adapt_normalisation(model, train_features)           # (N, 43, 301) float32, training actors only
    compile_model(model, steps_per_epoch=ceil(N / BATCH_SIZE))
    ds = tf.data.Dataset.from_tensor_slices((train_features, int_labels))
    ds = ds.shuffle(N).batch(BATCH_SIZE)
    model.fit(ds, epochs=EPOCHS, ...)                    # keep the best epoch on validation actors
    model.save("emotion.keras")                          # ~5.6 MB with optimizer state

:func:`build_model` returns an *uncompiled* model.  Importing this module is
enough for ``keras.models.load_model`` to find the custom layers.
"""

from __future__ import annotations

import math
import re

import keras
import librosa
import numpy as np
import scipy.fft
from keras import layers, ops

from udfs.features import DEFAULT_FEATURES, PITCH_ROWS, FeatureConfig

#: Recommended training schedule (speaker-independent CV on RAVDESS actors 01-20).
#: 90 epochs rather than 60: +0.8 points of UA on the mean of a 5-fold CV (README, "The shipped model").
EPOCHS = 90
BATCH_SIZE = 32
#: Peak of the warm-up + cosine schedule built by :func:`compile_model`.
LEARNING_RATE = 2e-3
WARMUP_EPOCHS = 3
#: Cosine decay ends at this fraction of the peak rate.
FINAL_LEARNING_RATE_FRACTION = 0.01
#: Early-stopping patience in epochs on validation UA.  Generous on purpose:
#: with the cosine schedule the best epoch came late (epoch 40-55 of 60) and
#: validation UA on 2-3 held-out actors is noisy from epoch to epoch.
PATIENCE = 20
#: How a training run chooses its weights (``emoticana train --selection``):
#: "best" keeps the epoch with the best validation UA and stops early after PATIENCE
#: epochs without a better one; "last" trains every epoch and keeps the last; "average"
#: trains every epoch and keeps the mean of the weights of the last AVERAGE_EPOCHS epochs
#: (stochastic weight averaging over the low-learning-rate tail of the cosine schedule).
#: On 2-3 validation speakers the best epoch is mostly noise: in a 5-fold speaker CV of
#: this recipe (README, "How emoticana/3's recipe was chosen") the last epoch scored 55.0 %
#: UA on the unseen speakers, the best validation epoch 53.3 %; the average of the last
#: 10 scored -0.8, -0.4 and +0.8 points against the last epoch on three screened folds.
SELECTIONS = ("best", "last", "average")
SELECTION = "last"
AVERAGE_EPOCHS = 10
#: The saved model averages its softmax over the input and these fixed vocal-tract warps
#: of it (MelWarp's transform at fixed factors; see :func:`with_warp_averaging`), so an
#: unseen speaker is also heard as if with a slightly shorter and a slightly longer vocal
#: tract.  Empty: no averaging.  Costs one more pass of the network per factor.  In the
#: same CV it lifted UA on every fold, by 0.8-5.4 points (55.0 -> 58.1 % on average).
INFERENCE_WARPS: tuple[float, ...] = (0.94, 1.06)
#: Class priors the saved model's probabilities assume (``emoticana train --class-priors``):
#: "balanced" wraps the network in :class:`PriorCorrection` with the inverse of the training
#: set's class frequencies, so every emotion is a priori equally likely and the arg-max is the
#: decision that maximises unweighted accuracy (RAVDESS has half as many neutral clips as any
#: other emotion); "training" keeps the training set's frequencies.
CLASS_PRIORS_CHOICES = ("balanced", "training")
CLASS_PRIORS = "balanced"

DEFAULT_HYPERPARAMS: dict = {
    # Conv1D widths and kernel sizes (frames); six layers, pooled by 2 after layers 2 and 4.
    # Width mattered most in CV: (32, 32, 64, 64, 128, 128) lost ~8-10 points of UA against
    # (64, 64, 128, 128, 256, 256), and these (emoticana/8) gained about a point on that (README).
    "filters": (80, 80, 160, 160, 320, 320),
    "kernels": (5, 5, 5, 5, 3, 3),
    "pool_after": (1, 3),
    "conv_dropout": 0.1,
    "dropout": 0.4,
    "weight_decay": 1e-4,
    # Augmentation, active only in training.  Units: frames (10 ms) and coefficients.
    "time_shift": 30,
    "time_masks": 2,
    "time_width": 30,
    "freq_masks": 2,
    "freq_width": 6,
    "noise": 0.1,
    # Speaker-like variation, the largest gain on unseen speakers in CV: warp the frequency
    # axis by up to +-10 % (vocal tract length) and stretch time by up to +-15 % (tempo).
    "mel_warp": 0.1,
    "time_stretch": 0.15,
    # Register: the absolute log2 F0 row moved by up to +-pitch_shift octaves (+-3 semitones)
    # on voiced frames (PitchShift); 0 turns it off.  A feature matrix without the pitch rows
    # has nothing to shift: the default then builds no layer, an explicit value is an error.
    # +0.7 points of UA over fourteen 5-fold CV folds against three runs without (README).
    "pitch_shift": 0.25,
    # Level: the whole clip made louder or quieter by up to +-level_shift dB (LevelShift), as
    # speakers and microphones differ (RAVDESS's actors' neutral clips span 17 dB); 0 turns it
    # off.  The default for steadiness (answers change far less when a clip is played at another
    # level: bench/level_steadiness.py), not for UA: +0.5 (se 0.7) over ten 5-fold CV folds (README).
    "level_shift": 6.0,
    # Independent copies of the network trained side by side (own initial weights, own
    # augmentation draws, own loss), their probabilities averaged: see build_model.
    "members": 1,
    # Mixup (Zhang et al. 2018): each training batch is mixed with a shuffled copy of itself,
    # features and one-hot labels by the same weight drawn from Beta(mixup, mixup) per clip;
    # 0 turns it off.  Applied to the fed batches (see mixup_batch), not inside the model.
    "mixup": 0.0,
    "seed": 0,
}

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
    """Linear interpolation as a matrix [shape=(len(positions), length)]: row i reads ``x[positions[i]]``.

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
    """:func:`mel_warp_matrices` for a layer that records its features as ``n_mels``, ``fmin``, ``fmax``, ``prosody_rows``."""
    config = FeatureConfig(
        n_mfcc=n_rows - layer.prosody_rows,
        n_mels=layer.n_mels,
        fmin=layer.fmin,
        fmax=layer.fmax,
        pitch=layer.prosody_rows > 0,
        periodicity=layer.prosody_rows > PITCH_ROWS,
    )
    return mel_warp_matrices(factors, config=config)


def _prosody_rows(prosody_rows: int, pitch: bool | None) -> int:
    """A warp layer's prosody row count; ``pitch`` is how models saved before ``periodicity`` recorded it (True: 3)."""
    return PITCH_ROWS if pitch else int(prosody_rows)


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
        them (:class:`FeatureConfig`); they are left alone.  ``pitch=True`` (models saved
        before ``prosody_rows``) means 3.
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
        pitch: bool | None = None,
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
        self.prosody_rows = _prosody_rows(prosody_rows, pitch)
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
    """float32 ``(1, rows, 1)``: 1 at ``row``, 0 elsewhere; times a ``(batch, 1, 1)`` amount it moves that row alone."""
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
        max_shift: float = DEFAULT_HYPERPARAMS["pitch_shift"],
        *,
        prosody_rows: int = PITCH_ROWS,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _require_pitch_rows(int(prosody_rows))
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
        max_db: float = DEFAULT_HYPERPARAMS["level_shift"],
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
    """The input, then fixed frequency warps of it, stacked on the batch axis (inference-time averaging).

    Input ``(batch, n_mfcc, frames)`` raw coefficients; output
    ``((1 + len(factors)) * batch, n_mfcc, frames)``, variant-major: rows
    ``[0, batch)`` are the input itself, then one block per factor.  The warps
    are :func:`mel_warp_matrices` at ``factors``.

    Parameters
    ----------
    factors : sequence of float
        Warp factors, around 1.
    n_mels, fmin, fmax, prosody_rows, pitch : keyword-only
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
        pitch: bool | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.factors = tuple(float(f) for f in factors)
        self.n_mels, self.fmin, self.fmax = int(n_mels), float(fmin), float(fmax)
        self.prosody_rows = _prosody_rows(prosody_rows, pitch)

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
    """Mean over the ``variants`` blocks that :class:`WarpVariants` stacked: ``(variants * batch, C)`` to ``(batch, C)``."""

    def __init__(self, variants: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.variants = int(variants)

    def call(self, x):
        return ops.mean(ops.reshape(x, (self.variants, -1, x.shape[-1])), axis=0)

    def get_config(self):
        return {**super().get_config(), "variants": self.variants}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FixedWarp(WarpVariants):
    """The input warped at one fixed factor, in training and inference alike: :class:`WarpVariants`'s
    warp at ``factor`` without the input itself.  Input and output ``(batch, n_mfcc, frames)``."""

    def __init__(self, factor: float = 1.0, **kwargs):
        super().__init__((factor,), **kwargs)

    @property
    def factor(self) -> float:
        return self.factors[0]

    def build(self, input_shape):
        self.matrix = _layer_warp_matrices(self, self.factors, n_rows=int(input_shape[1]))[0]

    def call(self, x):
        return ops.einsum("ij,bjt->bit", ops.convert_to_tensor(self.matrix), x)

    def get_config(self):
        config = super().get_config()
        del config["factors"]
        return {**config, "factor": self.factor}


def one_view_each(count: int, factors) -> bool:
    """Whether :func:`with_warp_averaging` gives each of ``count`` members one view (the input or one warp)."""
    return count > 1 and count == 1 + len(factors)


def with_warp_averaging(
    network: keras.Model, factors, *, prosody_rows: int = DEFAULT_FEATURES.prosody_rows
) -> keras.Model:
    """``network`` wrapped to average its probabilities over the input and its warps at ``factors``.

    An ensemble (:func:`build_model` with ``members``) of exactly ``1 + len(factors)``
    members hears one view each: the first member the input, the next the first warp,
    and so on, so the averaging costs no pass beyond the members' own.  Any other
    network hears every view.

    Parameters
    ----------
    network : keras.Model
        A trained model from :func:`build_model` (its weights are shared, not copied).
    factors : sequence of float
        Warp factors (e.g. ``(0.94, 1.06)``); empty returns ``network`` itself.
    prosody_rows : int, keyword-only
        The input ends with this many prosody rows (``FeatureConfig.prosody_rows``), which are not warped.

    Returns
    -------
    keras.Model
        Same input and output as ``network``: ``(batch, n_mfcc, frames)`` to
        ``(batch, n_classes)`` probabilities summing to 1.
    """
    if not factors:
        return network
    inputs = keras.Input(shape=network.input_shape[1:], name="mfcc")
    networks = members(network)
    if one_view_each(len(networks), factors):
        views = [
            inputs,
            *(
                FixedWarp(f, prosody_rows=prosody_rows, name=f"warp_{m + 2}")(inputs)
                for m, f in enumerate(factors)
            ),
        ]
        stacked = _stack_members(
            [member(view) for member, view in zip(networks, views)], network.output_shape[-1]
        )
        outputs = layers.GlobalAveragePooling1D(name="warp_mean")(stacked)
        return keras.Model(inputs, outputs, name="emoticana_member_warps")
    probabilities = network(
        WarpVariants(factors, prosody_rows=prosody_rows, name="warp_variants")(inputs)
    )
    outputs = VariantMean(1 + len(factors), name="warp_mean")(probabilities)
    return keras.Model(inputs, outputs, name="emoticana_warp_averaged")


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


def balancing_factors(class_counts) -> tuple[float, ...]:
    """Factors for :class:`PriorCorrection` that undo the training set's class frequencies.

    ``mean(counts) / count`` per class, so a balanced set gives all ones; a class with no
    training rows gets 1 (the network has learnt nothing of it to correct).
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or (counts < 0).any() or counts.sum() == 0:
        raise ValueError(
            f"class counts must be non-negative with at least one row, got {list(class_counts)}"
        )
    present = counts > 0
    mean = counts[present].mean()
    return tuple(float(mean / c) if c > 0 else 1.0 for c in counts)


def with_prior_correction(network: keras.Model, class_counts) -> keras.Model:
    """``network`` wrapped so that its probabilities assume equally likely classes.

    Parameters
    ----------
    network : keras.Model
        A trained model (from :func:`build_model` or :func:`with_warp_averaging`); weights shared.
    class_counts : sequence of int
        Training rows per class, in output order; empty returns ``network`` itself.

    Returns
    -------
    keras.Model
        Same input and output shapes as ``network``; rows still sum to 1.
    """
    if len(class_counts) == 0:
        return network
    factors = balancing_factors(class_counts)
    if len(factors) != network.output_shape[-1]:
        raise ValueError(
            f"{len(factors)} class counts for a model with {network.output_shape[-1]} outputs"
        )
    inputs = keras.Input(shape=network.input_shape[1:], name="mfcc")
    outputs = PriorCorrection(factors, name="balance_priors")(network(inputs))
    return keras.Model(inputs, outputs, name="emoticana_balanced")


def build_model(
    *,
    input_shape: tuple[int, int] = DEFAULT_FEATURES.shape,
    n_classes: int = 8,
    prosody_rows: int = DEFAULT_FEATURES.prosody_rows,
    **hyperparams,
) -> keras.Model:
    """Build the (uncompiled) emotion CNN, or an ensemble of them.

    Parameters
    ----------
    input_shape : tuple of int, keyword-only
        ``(rows, n_frames)`` of the feature matrix, as ``FeatureConfig.shape``.
    n_classes : int, keyword-only
        Number of emotions (softmax width).
    prosody_rows : int, keyword-only
        The last rows are this many prosody rows (``FeatureConfig.prosody_rows``): the
        vocal-tract warp leaves them alone; every other layer treats them as further channels.
    **hyperparams
        Overrides of :data:`DEFAULT_HYPERPARAMS`; unknown names raise ``TypeError``.
        ``members`` > 1 builds that many networks ``member1``, ``member2``, ... (each with
        its own weights, normalisation and augmentation seeds) side by side on the same
        input; their softmax outputs are stacked by the layer ``members`` ``(batch, members,
        n_classes)`` and averaged.  :func:`compile_model` trains every member on its own loss,
        so they are independent networks that see the same batches.

    Returns
    -------
    keras.Model
        Input ``mfcc`` of shape ``(batch, *input_shape)`` float32, output
        ``(batch, n_classes)`` probabilities summing to 1.  The normalisation
        layers still hold mean 0 / variance 1 until :func:`adapt_normalisation` is called.
    """
    hp = resolve_hyperparams(hyperparams, prosody_rows=prosody_rows)
    count = hp["members"]
    del hp["members"], hp["mixup"]  # how many networks, and how batches are fed: not part of one
    if count == 1:
        return _network(input_shape, n_classes, prosody_rows, hp, name="emoticana_cnn")
    seed = hp["seed"]
    networks = [
        # Augmentation layers take seed + 0..6: members 10 apart draw different augmentations.
        _network(
            input_shape,
            n_classes,
            prosody_rows,
            {**hp, "seed": None if seed is None else seed + 10 * m},
            name=f"member{m + 1}",
        )
        for m in range(count)
    ]
    inputs = keras.Input(shape=tuple(input_shape), name="mfcc")
    stacked = _stack_members([network(inputs) for network in networks], n_classes)
    return keras.Model(
        inputs,
        layers.GlobalAveragePooling1D(name="member_mean")(stacked),
        name="emoticana_ensemble",
    )


def resolve_hyperparams(hyperparams: dict, *, prosody_rows: int) -> dict:
    """Every hyperparameter a model trains with: :data:`DEFAULT_HYPERPARAMS` with ``hyperparams`` over them, checked.

    ``pitch_shift`` is what :func:`pitch_shift_octaves` makes of it (the default is 0 without the
    pitch rows).  The trainer resolves them once and hands the whole dict to the TF nodes: Spark
    reuses Python workers, so a node's ``DEFAULT_HYPERPARAMS`` may be an older import's.  TypeError
    for unknown names, ValueError for bad values.
    """
    unknown = set(hyperparams) - set(DEFAULT_HYPERPARAMS)
    if unknown:
        raise TypeError(f"unknown hyperparameters: {sorted(unknown)}")
    hp = {**DEFAULT_HYPERPARAMS, **hyperparams}
    for name in ("filters", "kernels"):
        if not isinstance(hp[name], (list, tuple)) or not all(
            _whole(n) and n >= 1 for n in hp[name]
        ):
            raise ValueError(f"{name} must be a list of whole numbers >= 1, got {hp[name]!r}")
    if len(hp["filters"]) != len(hp["kernels"]):
        raise ValueError("filters and kernels must have the same length")
    if hp["seed"] is not None and not _whole(hp["seed"]):
        raise ValueError(f"seed must be a whole number, got {hp['seed']!r}")
    member_count(hp)
    mixup_alpha(hp)
    level_shift_db(hp)
    hp["pitch_shift"] = pitch_shift_octaves(hyperparams, prosody_rows=prosody_rows)
    return hp


def _whole(value) -> bool:
    """An int and not a bool (``True`` is an int to Python, not a count or a seed)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _amount(hyperparams: dict, name: str, *, high: float, what: str) -> float:
    """The ``name`` of ``hyperparams`` (default :data:`DEFAULT_HYPERPARAMS`'), an amount where 0 turns it off.

    ValueError ``"<name> must be <what> (0: off), got <value>"`` unless a finite number in ``[0, high]``.
    """
    value = hyperparams.get(name, DEFAULT_HYPERPARAMS[name])
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not (0 <= value <= high and math.isfinite(value))
    ):
        raise ValueError(f"{name} must be {what} (0: off), got {value!r}")
    return float(value)


def mixup_alpha(hyperparams: dict) -> float:
    """The ``mixup`` of ``hyperparams`` (default :data:`DEFAULT_HYPERPARAMS`'); ValueError unless a number >= 0."""
    return _amount(hyperparams, "mixup", high=math.inf, what="a number >= 0")


def mixup_batch(features, labels, *, alpha: float, n_classes: int, seed: int | None = None):
    """Mix a batch with a shuffled copy of itself (mixup); labels become one-hot float32.

    Parameters
    ----------
    features : tf.Tensor [shape=(batch, rows, frames), dtype=float32]
    labels : tf.Tensor [shape=(batch,), dtype=int32]
        Class indices.
    alpha : float, keyword-only
        Beta(alpha, alpha) draws each clip's weight ``w``: the clip keeps ``w`` of itself and
        takes ``1 - w`` of its partner, for features and labels alike.  Must be > 0.
    n_classes : int, keyword-only
    seed : int or None, keyword-only

    Returns
    -------
    tuple of tf.Tensor
        ``(mixed features, mixed one-hot labels (batch, n_classes))``: train with
        ``compile_model(..., one_hot_labels=True)``.
    """
    import tensorflow as tf

    size = tf.shape(labels)[0]
    one_hot = tf.one_hot(labels, n_classes, dtype=tf.float32)
    # Beta(a, a) as g1 / (g1 + g2) of two Gamma(a) draws (TensorFlow has no Beta sampler).
    g1 = tf.random.gamma([size], alpha, seed=seed)
    g2 = tf.random.gamma([size], alpha, seed=None if seed is None else seed + 1)
    weight = g1 / tf.maximum(g1 + g2, 1e-12)
    partner = tf.random.shuffle(tf.range(size), seed=None if seed is None else seed + 2)
    w_x = tf.reshape(weight, [-1, 1, 1])
    w_y = tf.reshape(weight, [-1, 1])
    mixed_x = w_x * features + (1.0 - w_x) * tf.gather(features, partner)
    mixed_y = w_y * one_hot + (1.0 - w_y) * tf.gather(one_hot, partner)
    return mixed_x, mixed_y


def training_batches(batches, hyperparams: dict, *, n_classes: int, seed: int | None = None):
    """``batches`` (a ``tf.data.Dataset`` of ``(features, class index)`` batches) as the recipe trains on them.

    Returns ``(dataset, one_hot_labels)``: with ``mixup`` > 0 each batch goes through
    :func:`mixup_batch` and the labels become one-hot (compile with ``one_hot_labels=True``);
    otherwise ``batches`` itself and False.
    """
    alpha = mixup_alpha(hyperparams)
    if not alpha:
        return batches, False
    return batches.map(
        lambda x, y: mixup_batch(x, y, alpha=alpha, n_classes=n_classes, seed=seed)
    ), True


def pitch_shift_octaves(hyperparams: dict, *, prosody_rows: int) -> float:
    """The register shift :func:`build_model` trains with: ``pitch_shift`` of ``hyperparams``.

    The default (:data:`DEFAULT_HYPERPARAMS`') becomes 0 for a feature matrix without the pitch
    rows (``prosody_rows`` < :data:`udfs.features.PITCH_ROWS`: nothing to shift); a value given
    in ``hyperparams`` there, or one that is not a number in [0, 1] octave, is a ValueError.
    """
    octaves = _amount(hyperparams, "pitch_shift", high=1, what="a number of octaves in [0, 1]")
    if prosody_rows < PITCH_ROWS and octaves:
        if "pitch_shift" in hyperparams:
            _require_pitch_rows(prosody_rows)
        return 0.0
    return octaves


def level_shift_db(hyperparams: dict) -> float:
    """The ``level_shift`` of ``hyperparams`` (default :data:`DEFAULT_HYPERPARAMS`'); ValueError unless a number of dB in [0, 40]."""
    return _amount(hyperparams, "level_shift", high=40, what="a number of dB in [0, 40]")


def _require_pitch_rows(prosody_rows: int) -> None:
    """ValueError unless the input ends in the pitch rows that :class:`PitchShift` shifts."""
    if prosody_rows < PITCH_ROWS:
        raise ValueError(
            f"pitch_shift needs the pitch rows (prosody_rows >= {PITCH_ROWS}), got prosody_rows={prosody_rows}"
        )


def member_count(hyperparams: dict) -> int:
    """The ``members`` of ``hyperparams`` (default :data:`DEFAULT_HYPERPARAMS`'); ValueError unless a whole number >= 1."""
    count = hyperparams.get("members", DEFAULT_HYPERPARAMS["members"])
    if not _whole(count) or count < 1:
        raise ValueError(f"members must be a whole number >= 1, got {count!r}")
    return count


def _stack_members(probabilities: list, n_classes: int):
    """``(batch, n_classes)`` outputs stacked as ``(batch, len(probabilities), n_classes)``, layer ``members``."""
    rows = [
        layers.Reshape((1, n_classes), name=f"member{m + 1}_row")(p)
        for m, p in enumerate(probabilities)
    ]
    return layers.Concatenate(axis=1, name="members")(rows)


def members(model: keras.Model) -> list[keras.Model]:
    """The networks of an ensemble from :func:`build_model` (``member1``, ...), or ``[model]`` for one network."""
    found = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.Model) and re.fullmatch(r"member\d+", layer.name)
    ]
    return sorted(found, key=lambda layer: int(layer.name[6:])) or [model]


def _network(input_shape, n_classes: int, prosody_rows: int, hp: dict, *, name: str) -> keras.Model:
    """One CNN of :func:`build_model` (``hp``: its hyperparameters without ``members``)."""
    regulariser = keras.regularizers.l2(hp["weight_decay"]) if hp["weight_decay"] else None
    seed = hp["seed"]
    inputs = keras.Input(shape=tuple(input_shape), name="mfcc")
    x = inputs
    if hp["mel_warp"]:
        # On the raw coefficients: the warp is defined on the log-mel spectrum they encode.
        x = MelWarp(
            hp["mel_warp"],
            prosody_rows=prosody_rows,
            seed=None if seed is None else seed + 3,
            name="augment_warp",
        )(x)
    if hp["pitch_shift"]:
        x = PitchShift(
            hp["pitch_shift"],
            prosody_rows=prosody_rows,
            seed=None if seed is None else seed + 5,
            name="augment_pitch",
        )(x)
    if hp["level_shift"]:
        x = LevelShift(
            hp["level_shift"], seed=None if seed is None else seed + 6, name="augment_level"
        )(x)
    # Per-coefficient statistics (axis 1 = coefficient): c0 is in the hundreds
    # and c20+ near unit scale, so without this the loudness term dominates.
    # Per-utterance standardisation (over speech frames) was tried instead and
    # lost 2-6 points of UA: it erases the level and dynamics that separate
    # angry from calm/sad.
    x = layers.Normalization(axis=1, name="normalise")(x)
    if hp["time_stretch"]:
        x = TimeStretch(
            hp["time_stretch"], seed=None if seed is None else seed + 4, name="augment_stretch"
        )(x)
    x = layers.Permute((2, 1), name="time_major")(
        x
    )  # (frames, coefficients): coefficients are channels
    if hp["time_shift"]:
        x = RandomTimeShift(hp["time_shift"], seed=seed, name="augment_shift")(x)
    if hp["time_masks"] or hp["freq_masks"]:
        x = SpecAugment(
            hp["time_masks"],
            hp["time_width"],
            hp["freq_masks"],
            hp["freq_width"],
            seed=None if seed is None else seed + 1,
            name="augment_mask",
        )(x)
    if hp["noise"]:
        x = layers.GaussianNoise(
            hp["noise"], seed=None if seed is None else seed + 2, name="augment_noise"
        )(x)

    for i, (width, kernel) in enumerate(zip(hp["filters"], hp["kernels"])):
        # No bias: batch norm's beta makes it redundant.
        x = layers.Conv1D(
            width,
            kernel,
            padding="same",
            use_bias=False,
            kernel_regularizer=regulariser,
            name=f"conv{i + 1}",
        )(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.Activation("relu", name=f"relu{i + 1}")(x)
        if i in hp["pool_after"]:
            x = layers.MaxPooling1D(2, name=f"pool{i + 1}")(x)
            if hp["conv_dropout"]:
                # Whole-channel dropout: neighbouring frames are too correlated for unit dropout to regularise.
                x = layers.SpatialDropout1D(hp["conv_dropout"], name=f"drop{i + 1}")(x)

    # Mean and max over time: the mean summarises the utterance, the max keeps
    # short salient events (a shout, a laugh) that the mean would dilute.
    x = layers.Concatenate(name="pool_time")(
        [layers.GlobalAveragePooling1D(name="avg")(x), layers.GlobalMaxPooling1D(name="max")(x)]
    )
    x = layers.Dropout(hp["dropout"], name="drop_head")(x)
    outputs = layers.Dense(
        n_classes, activation="softmax", kernel_regularizer=regulariser, name="emotion"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def adapt_normalisation(model: keras.Model, features) -> None:
    """Set the input standardisation from training features (in place).

    Call once per model, before training, with the training split only (never
    validation or test speakers).  The statistics are saved with the model.

    Parameters
    ----------
    model : keras.Model
        A model from :func:`build_model`.
    features : array-like [shape=(n_clips, n_mfcc, n_frames), dtype=float32]
        Training MFCC matrices.
    """
    first = members(model)[0].get_layer("normalise")
    first.adapt(features)
    # An ensemble's other members get the same statistics without another pass over the features.
    set_normalisation(model, mean=first.mean, variance=first.variance)


def set_normalisation(model: keras.Model, *, mean, variance) -> None:
    """Set the input standardisation from precomputed statistics (in place).

    Same effect as :func:`adapt_normalisation`, for callers (the distributed
    trainer) that computed the statistics elsewhere.

    Parameters
    ----------
    model : keras.Model
        A model from :func:`build_model`.
    mean, variance : array-like [shape=(n_mfcc,)], keyword-only
        Per-coefficient mean and variance over all frames of the training clips.
    """
    for network in members(model):
        layer = network.get_layer("normalise")
        layer.adapt_mean.assign(np.asarray(mean, dtype=np.float32).reshape(layer.adapt_mean.shape))
        layer.adapt_variance.assign(
            np.asarray(variance, dtype=np.float32).reshape(layer.adapt_variance.shape)
        )
        layer.finalize_state()


def learning_rate_schedule(
    steps_per_epoch: int,
    *,
    epochs: int = EPOCHS,
    peak: float = LEARNING_RATE,
    warmup_epochs: int = WARMUP_EPOCHS,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from ``peak / 10`` to ``peak``, then cosine decay to 1 % of it by the last epoch.

    The short warm-up avoids large first steps while batch-norm statistics
    are still unsettled; the decay to a small rate is where the best
    validation epochs were found (epochs 40-57 of 60).

    Parameters
    ----------
    steps_per_epoch : int
        Batches per epoch, ``ceil(n_train / BATCH_SIZE)``.
    epochs, peak, warmup_epochs : keyword-only
        Schedule length (epochs), peak learning rate and warm-up length (epochs).
    """
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak * 0.1,
        decay_steps=max(1, steps_per_epoch * epochs),
        alpha=FINAL_LEARNING_RATE_FRACTION,
        warmup_target=peak,
        warmup_steps=steps_per_epoch * warmup_epochs,
    )


def compile_model(
    model: keras.Model,
    *,
    learning_rate=LEARNING_RATE,
    steps_per_epoch: int | None = None,
    epochs: int = EPOCHS,
    label_smoothing: float = 0.0,
    one_hot_labels: bool = False,
) -> keras.Model:
    """Compile ``model`` with Adam and cross-entropy.

    Parameters
    ----------
    model : keras.Model
        A model from :func:`build_model`.
    learning_rate : float or LearningRateSchedule, keyword-only
        A float is the *peak* of :func:`learning_rate_schedule` when
        ``steps_per_epoch`` is given, else a constant rate.  A schedule is used as is.
    steps_per_epoch : int, keyword-only
        Batches per epoch; needed for the recommended schedule.
    epochs : int, keyword-only
        Planned epochs (length of the cosine decay).
    label_smoothing : float, keyword-only
        Only with ``one_hot_labels`` (Keras' sparse loss has no smoothing).
    one_hot_labels : bool, keyword-only
        False: integer labels (sparse categorical cross-entropy), as the
        Spark trainer feeds them.  True: one-hot float32 labels, needed when
        the labels are mixed (mixup).

    Returns
    -------
    keras.Model
        The model to ``fit``, compiled, with an ``accuracy`` metric: ``model`` itself, or
        for an ensemble a model sharing its layers whose output is every member's
        probabilities, with each member's cross-entropy as its own term of the loss (summed,
        so each member's gradient is what it would be alone) and the accuracy of their mean.
        ``model`` keeps predicting the mean.
    """
    if isinstance(learning_rate, (int, float)) and steps_per_epoch:
        learning_rate = learning_rate_schedule(
            steps_per_epoch, epochs=epochs, peak=float(learning_rate)
        )
    if one_hot_labels:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    elif label_smoothing:
        raise ValueError("label_smoothing needs one_hot_labels=True")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    metrics = ["accuracy"]
    if len(members(model)) > 1:
        model = keras.Model(
            model.inputs, model.get_layer("members").output, name=f"{model.name}_training"
        )
        loss, metrics = _member_loss(loss), [_member_mean_accuracy(one_hot_labels)]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    return model


def _member_loss(loss: keras.losses.Loss):
    """``loss`` of every member's ``(batch, members, classes)`` probabilities, summed over the members."""

    def member_loss(y_true, y_pred):
        return sum(loss(y_true, y_pred[:, m, :]) for m in range(y_pred.shape[1]))

    return member_loss


def _member_mean_accuracy(one_hot_labels: bool):
    """Accuracy of the members' mean probabilities (what the ensemble predicts)."""
    accuracy = (
        keras.metrics.categorical_accuracy
        if one_hot_labels
        else keras.metrics.sparse_categorical_accuracy
    )

    def accuracy_of_mean(y_true, y_pred):
        return accuracy(y_true, ops.mean(y_pred, axis=1))

    accuracy_of_mean.__name__ = "accuracy"
    return accuracy_of_mean
