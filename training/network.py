"""The emotion CNN and the wrappers that make a trained network the saved model.

The network takes exactly what :func:`udfs.features.mfcc_features` returns, shape
``(rows, n_frames)`` float32, and gives softmax probabilities in the order of
:data:`udfs.labels.EMOTIONS`.  Everything inference needs lives inside the saved
``.keras`` file: the per-row standardisation (a ``Normalization`` layer set from the
training features), the augmentation layers (active only in training) and the
inference-time wrappers (warp averaging, prior correction), all from
:mod:`udfs.model_layers`.

Typical use::

    model = build_model()
    set_normalisation(model, mean=..., variance=...)     # training speakers only
    compile_model(model, steps_per_epoch=ceil(N / BATCH_SIZE))   # training.schedule
    model.fit(batches, epochs=EPOCHS)                    # keep the last epoch
    saved = with_prior_correction(with_warp_averaging(model, INFERENCE_WARPS), class_counts)
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from training.recipe import resolve_hyperparams
from udfs.features import DEFAULT_FEATURES
from udfs.model_layers import (
    LevelShift,
    MelWarp,
    PitchShift,
    PriorCorrection,
    RandomTimeShift,
    SpecAugment,
    TimeStretch,
    VariantMean,
    WarpVariants,
)


def build_model(
    *,
    input_shape: tuple[int, int] = DEFAULT_FEATURES.shape,
    n_classes: int = 8,
    prosody_rows: int = DEFAULT_FEATURES.prosody_rows,
    **hyperparams,
) -> keras.Model:
    """Build the (uncompiled) emotion CNN.

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
        Overrides of :data:`training.recipe.DEFAULT_HYPERPARAMS`; unknown names raise
        ``TypeError``, bad values ``ValueError``.

    Returns
    -------
    keras.Model
        Input ``mfcc`` of shape ``(batch, *input_shape)`` float32, output
        ``(batch, n_classes)`` probabilities summing to 1.  The normalisation
        layers still hold mean 0 / variance 1 until :func:`adapt_normalisation` is called.
    """
    hp = resolve_hyperparams(hyperparams, prosody_rows=prosody_rows)
    return _network(input_shape, n_classes, prosody_rows, hp, name="emoticana_cnn")


def _network(input_shape, n_classes: int, prosody_rows: int, hp: dict, *, name: str) -> keras.Model:
    """The CNN of :func:`build_model` for resolved hyperparameters ``hp``."""
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
    # Per-utterance statistics instead (standardisation, or only the clip's mean
    # subtracted) lost within and across corpora: a clip's level and spectral tilt are
    # part of the vocal effort that separates angry from calm and sad
    # (docs/model-history.md).
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
                # Whole-channel dropout: neighbouring frames are too correlated for unit dropout to
                # regularise.
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
    model.get_layer("normalise").adapt(features)


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
    layer = model.get_layer("normalise")
    layer.adapt_mean.assign(np.asarray(mean, dtype=np.float32).reshape(layer.adapt_mean.shape))
    layer.adapt_variance.assign(
        np.asarray(variance, dtype=np.float32).reshape(layer.adapt_variance.shape)
    )
    layer.finalize_state()


def with_warp_averaging(
    network: keras.Model, factors, *, prosody_rows: int = DEFAULT_FEATURES.prosody_rows
) -> keras.Model:
    """``network`` wrapped to average its probabilities over the input and its warps at ``factors``.

    The network hears every view: ``1 + len(factors)`` passes per clip.

    Parameters
    ----------
    network : keras.Model
        A trained model from :func:`build_model` (its weights are shared, not copied).
    factors : sequence of float
        Warp factors (e.g. ``(0.94, 1.06)``); empty returns ``network`` itself.
    prosody_rows : int, keyword-only
        The input ends with this many prosody rows (``FeatureConfig.prosody_rows``), which are
        not warped.

    Returns
    -------
    keras.Model
        Same input and output as ``network``: ``(batch, n_mfcc, frames)`` to
        ``(batch, n_classes)`` probabilities summing to 1.
    """
    if not factors:
        return network
    inputs = keras.Input(shape=network.input_shape[1:], name="mfcc")
    probabilities = network(
        WarpVariants(factors, prosody_rows=prosody_rows, name="warp_variants")(inputs)
    )
    outputs = VariantMean(1 + len(factors), name="warp_mean")(probabilities)
    return keras.Model(inputs, outputs, name="emoticana_warp_averaged")


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
