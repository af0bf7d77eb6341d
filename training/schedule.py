"""How the network is optimised: Adam on a warm-up and cosine learning-rate schedule."""

from __future__ import annotations

import keras

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


def compile_model(
    model: keras.Model,
    *,
    learning_rate=LEARNING_RATE,
    steps_per_epoch: int | None = None,
    epochs: int = EPOCHS,
) -> keras.Model:
    """Compile ``model`` with Adam and sparse categorical cross-entropy (integer labels).

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
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    return model
