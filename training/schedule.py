"""How the network is optimised: Adam on a warm-up and cosine learning-rate schedule, and the
partial-label loss that lets corpora with different emotion sets train one network.

Targets are ``(batch, 2 * n_classes)`` float32: the one-hot label, then the mask of the emotions
the clip's corpus has (:func:`partial_targets`).  The loss is the cross-entropy of the network's
probabilities renormalised over the masked emotions, so a clip says "this one, among these"
and nothing about emotions its corpus never recorded: a corpus without ``calm`` does not teach
that calm never happens.  A corpus with every emotion gives the plain cross-entropy.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from training.recipe import EPOCHS, FINAL_LEARNING_RATE_FRACTION, LEARNING_RATE, WARMUP_EPOCHS


def learning_rate_schedule(
    steps_per_epoch: int,
    *,
    epochs: int = EPOCHS,
    peak: float = LEARNING_RATE,
    warmup_epochs: int = WARMUP_EPOCHS,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from ``peak / 10`` to ``peak``, then cosine decay to 1 % of it by the last
    epoch.

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


def partial_targets(labels, masks) -> np.ndarray:
    """Targets for :func:`partial_label_loss`: one-hot ``labels`` beside the corpus ``masks``.

    Parameters
    ----------
    labels : array-like [shape=(n,), dtype=int]
        Class indices.
    masks : array-like [shape=(n, n_classes)]
        1 for every emotion the row's corpus has (its label among them), else 0.

    Returns
    -------
    np.ndarray [shape=(n, 2 * n_classes), dtype=float32]
    """
    masks = np.asarray(masks, dtype=np.float32)
    one_hot = np.eye(masks.shape[1], dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
    if np.any(one_hot * (1 - masks)):
        raise ValueError("a label outside its corpus's emotions")
    return np.concatenate([one_hot, masks], axis=1)


def _split(targets):
    n_classes = targets.shape[-1] // 2
    return targets[:, :n_classes], targets[:, n_classes:]


def _renormalised(probabilities, mask):
    masked = probabilities * mask
    return masked / ops.maximum(ops.sum(masked, axis=-1, keepdims=True), 1e-12)


def partial_label_loss(targets, probabilities):
    """Cross-entropy of the probabilities renormalised over each row's corpus emotions."""
    one_hot, mask = _split(targets)
    chosen = ops.sum(_renormalised(probabilities, mask) * one_hot, axis=-1)
    return -ops.log(ops.clip(chosen, 1e-7, 1.0))


def partial_label_accuracy(targets, probabilities):
    """Whether the most probable of the row's corpus emotions is its label."""
    one_hot, mask = _split(targets)
    predicted = ops.argmax(_renormalised(probabilities, mask), axis=-1)
    return ops.cast(ops.equal(predicted, ops.argmax(one_hot, axis=-1)), "float32")


partial_label_accuracy.__name__ = "accuracy"


def compile_model(
    model: keras.Model,
    *,
    learning_rate=LEARNING_RATE,
    steps_per_epoch: int | None = None,
    epochs: int = EPOCHS,
) -> keras.Model:
    """Compile ``model`` with Adam and the partial-label loss (targets: :func:`partial_targets`).

    Parameters
    ----------
    model : keras.Model
        A model from :func:`training.network.build_model`.
    learning_rate : float or LearningRateSchedule, keyword-only
        A float is the *peak* of :func:`learning_rate_schedule` when
        ``steps_per_epoch`` is given, else a constant rate.  A schedule is used as is.
    steps_per_epoch : int, keyword-only
        Batches per epoch; needed for the recommended schedule.
    epochs : int, keyword-only
        Planned epochs (length of the cosine decay).

    Returns
    -------
    keras.Model
        ``model`` itself, compiled, with an ``accuracy`` metric.
    """
    if isinstance(learning_rate, (int, float)) and steps_per_epoch:
        learning_rate = learning_rate_schedule(
            steps_per_epoch, epochs=epochs, peak=float(learning_rate)
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=partial_label_loss,
        metrics=[partial_label_accuracy],
    )
    return model


def apply_layers(layers, tensor):
    """``layers`` applied in turn to ``tensor``."""
    for layer in layers:
        tensor = layer(tensor)
    return tensor


def fit_layers(
    x: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray,
    layers: list,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
) -> None:
    """Train ``layers`` (applied in turn, the last a softmax over the emotions) on standardised
    inputs ``x`` with the partial-label loss (each row's ``masks``: its corpus's emotions) on the
    network's schedule; the heads beside the network are such stacks."""
    inputs = keras.Input((x.shape[1],))
    model = keras.Model(inputs, apply_layers(layers, inputs))
    steps = int(np.ceil(len(x) / batch_size))
    compile_model(model, learning_rate=learning_rate, steps_per_epoch=steps, epochs=epochs)
    model.fit(
        np.asarray(x, dtype=np.float32),
        partial_targets(labels, masks),
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
    )


def fit_softmax_layer(
    x: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int = 0,
    name: str | None = None,
):
    """One softmax layer trained by :func:`fit_layers`; the voice head is such a layer."""
    from udfs.labels import EMOTIONS

    keras.utils.set_random_seed(seed)
    layer = keras.layers.Dense(len(EMOTIONS), activation="softmax", name=name)
    fit_layers(
        x, labels, masks, [layer], epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
    )
    return layer
