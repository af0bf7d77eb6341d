"""The training recipe: schedule, model selection, inference options and hyperparameters.

Everything a training run is configured with, checked here once: the trainer resolves the
whole set (:func:`resolve_hyperparams`) and hands it to the TensorFlowOnSpark nodes and the
manifest, so a reused Spark Python worker cannot build an older import's defaults.  The
figures behind these choices are in ``docs/model-history.md``.
"""

from __future__ import annotations

import math

from udfs.features import PITCH_ROWS

#: Training schedule: epochs of the warm-up and cosine learning-rate schedule, global batch.
EPOCHS = 90
BATCH_SIZE = 32
#: Peak of the warm-up + cosine schedule (:func:`training.schedule.compile_model`).
LEARNING_RATE = 2e-3
#: A short warm-up: no large first steps while batch-norm statistics are unsettled.
WARMUP_EPOCHS = 3
#: Cosine decay ends at this fraction of the peak rate.
FINAL_LEARNING_RATE_FRACTION = 0.01
#: Early-stopping patience in epochs on validation UA (``--selection best`` only).  Generous
#: because validation UA on two or three held-out speakers is noisy from epoch to epoch.
PATIENCE = 20
#: How a training run chooses its weights (``emoticana train --selection``): "best" keeps the
#: epoch with the best validation UA and stops early after PATIENCE epochs without a better
#: one; "last" trains every epoch and keeps the last.  "last" is the default because the best
#: epoch on a few validation speakers is mostly noise, and it needs no validation speakers.
SELECTIONS = ("best", "last")
SELECTION = "last"
#: The saved model averages its softmax over the input and these fixed vocal-tract warps of
#: it (:class:`udfs.model_layers.WarpVariants`), so an unseen speaker is also heard as if with
#: a slightly shorter and a slightly longer vocal tract.  Empty: no averaging.  Each factor
#: costs one more pass of the network per clip; beside the speech encoder the warps bought next
#: to nothing for a sixth of the pipeline's cost, so the shipped recipe has none
#: (docs/model-history.md).
INFERENCE_WARPS: tuple[float, ...] = ()
#: Class priors the saved model's probabilities assume (``emoticana train --class-priors``):
#: "balanced" wraps the network in :class:`udfs.model_layers.PriorCorrection` with the inverse
#: of the training set's class frequencies, so every emotion is a priori equally likely and the
#: arg-max is the decision that maximises unweighted accuracy; "training" keeps the training
#: set's frequencies.
CLASS_PRIORS_CHOICES = ("balanced", "training")
CLASS_PRIORS = "balanced"

DEFAULT_HYPERPARAMS: dict = {
    # Conv1D widths and kernel sizes (frames); six layers, pooled by 2 after layers 2 and 4.
    # Width is what mattered most in cross-validation.
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
    # Speaker-like variation, what helps most on unseen speakers: warp the frequency axis by
    # up to +-10 % (vocal tract length) and stretch time by up to +-15 % (tempo).
    "mel_warp": 0.1,
    "time_stretch": 0.15,
    # Register: the absolute log2 F0 row moved by up to +-pitch_shift octaves (+-3 semitones)
    # on voiced frames (PitchShift); 0 turns it off.  A feature matrix without the pitch rows
    # has nothing to shift: the default then builds no layer, an explicit value is an error.
    "pitch_shift": 0.25,
    # Level: the whole clip made louder or quieter by up to +-level_shift dB (LevelShift), as
    # speakers and microphones differ (RAVDESS's actors' neutral clips span 17 dB); 0 turns it
    # off.  Chosen for steadiness: answers change far less when a clip is played at another
    # level (bench/level_steadiness.py).
    "level_shift": 6.0,
    # Seeds the augmentation layers (each layer takes seed + a fixed offset).
    "seed": 0,
}


def resolve_hyperparams(hyperparams: dict, *, prosody_rows: int) -> dict:
    """Every hyperparameter a model trains with: :data:`DEFAULT_HYPERPARAMS` with ``hyperparams``
    over them, checked.

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
    level_shift_db(hp)
    hp["pitch_shift"] = pitch_shift_octaves(hyperparams, prosody_rows=prosody_rows)
    return hp


def _whole(value) -> bool:
    """An int and not a bool (``True`` is an int to Python, not a count or a seed)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _amount(hyperparams: dict, name: str, *, high: float, what: str) -> float:
    """The ``name`` of ``hyperparams`` (default :data:`DEFAULT_HYPERPARAMS`'), an amount where 0
    turns it off.

    ValueError ``"<name> must be <what> (0: off), got <value>"`` unless a finite number in
    ``[0, high]``.
    """
    value = hyperparams.get(name, DEFAULT_HYPERPARAMS[name])
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not (0 <= value <= high and math.isfinite(value))
    ):
        raise ValueError(f"{name} must be {what} (0: off), got {value!r}")
    return float(value)


def pitch_shift_octaves(hyperparams: dict, *, prosody_rows: int) -> float:
    """The register shift :func:`training.network.build_model` trains with: ``pitch_shift`` of
    ``hyperparams``.

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
    """The ``level_shift`` of ``hyperparams`` (default :data:`DEFAULT_HYPERPARAMS`'); ValueError
    unless a number of dB in [0, 40]."""
    return _amount(hyperparams, "level_shift", high=40, what="a number of dB in [0, 40]")


def _require_pitch_rows(prosody_rows: int) -> None:
    """ValueError unless the input ends in the pitch rows that :class:`PitchShift` shifts."""
    if prosody_rows < PITCH_ROWS:
        raise ValueError(
            f"pitch_shift needs the pitch rows (prosody_rows >= {PITCH_ROWS}), "
            f"got prosody_rows={prosody_rows}"
        )
