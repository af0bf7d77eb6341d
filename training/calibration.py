"""Calibration: how sure the model says it is, fitted on held-out predictions, so that confidence
means what it says (answers given with confidence 0.9 right about 90 % of the time).

The cross-validation's predictions are of speakers (and, leaving one corpus out, corpora) its
fold models never heard: the audio users bring is like that.  Two numbers are fitted on them:

- a temperature ``T``, the probabilities' ``p ** (1 / T)`` renormalised
  (:class:`udfs.model_layers.Temperature`);
- for a model with the speech encoder, a ``slope`` by which audio far from the speech the
  model learnt from is softened further: ``T * exp(slope * max(0, distance))``, the distance
  being how much farther than most training clips its encoder states lie
  (:func:`udfs.model_layers.log_state_distance` over the training states' reference,
  :class:`udfs.model_layers.DistanceTemperature`).  Tones, sweeps and noise lie far beyond any
  speech; so does a corpus recorded unlike every training corpus, on which the network is
  wrong more often.

Neither changes a decision (the order of the probabilities stays), only the confidence.  They
minimise the mean over corpora of each corpus's expected calibration error, the figure users
meet, measured apart among near and far clips: the negative log-likelihood of all rows pooled
is ruled by the confidently wrong answers of the hardest corpus and leaves every other corpus
underconfident (docs/model-history.md).  Where that error hardly tells slopes apart, the
steepest is taken (:data:`TOLERANCE`).
"""

from __future__ import annotations

import numpy as np

from training.metrics import expected_calibration_error

#: Temperatures searched (log-spaced): sharper than the network down to ten times softer.
TEMPERATURE_BOUNDS = (0.25, 10.0)
TEMPERATURE_STEPS = 160
#: Slopes searched for the distance; 0 leaves the temperature alone.  The fits on the four
#: corpora land on the largest, and their error still falls a little beyond it: clips beyond
#: the reference are best answered near chance.  So the last value is a choice (at 8 the
#: temperature doubles 9 % beyond the reference), not a fitted figure.
SLOPES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
#: Calibrations whose error is within this of the smallest are taken as equally good: a
#: corpus's calibration error over a few hundred clips is uncertain by more than that.  Of
#: those, the steepest slope wins.  Held-out corpora recorded like one another have almost no
#: clips beyond the reference, so their error hardly depends on the slope, and the smallest
#: would leave audio unlike any training speech as sure as the rest; that audio is known to be
#: answered worse (a corpus recorded otherwise, and sound that is not speech).  So with no
#: clip beyond the reference at all, where every slope fits alike, the slope is the steepest.
TOLERANCE = 0.005
#: The training clips' distance this quantile of them stays within is the reference: only
#: audio farther than that is softened.
DISTANCE_QUANTILE = 0.95


def scaled(probabilities: np.ndarray, temperature) -> np.ndarray:
    """``probabilities ** (1 / temperature)`` renormalised per row (what ``Temperature`` does);
    ``temperature`` is one number or one per row."""
    temperature = np.asarray(temperature, dtype=np.float64)
    if temperature.ndim:
        temperature = temperature[:, None]
    logits = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), 1e-12)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def row_temperatures(temperature: float, slope: float, distance) -> np.ndarray:
    """Each row's temperature (what ``DistanceTemperature`` computes): ``distance`` is the log
    of a row's distance over the reference, so rows within it keep ``temperature``."""
    distance = np.asarray(distance, dtype=np.float64)
    return temperature * np.exp(slope * np.maximum(distance, 0.0))


def calibrated(probabilities: np.ndarray, calibration: dict, distance=None) -> np.ndarray:
    """``probabilities`` as the model wrapped in ``calibration`` (``temperature``, ``slope``)
    gives them; ``distance`` per row, none for a model without the encoder."""
    temperature = float(calibration.get("temperature", 1.0))
    slope = float(calibration.get("slope", 0.0))
    if distance is None or not slope:
        return scaled(probabilities, temperature)
    return scaled(probabilities, row_temperatures(temperature, slope, distance))


def mean_calibration_error(probabilities, labels, groups, distance=None) -> float:
    """The mean over ``groups`` (corpora) of each one's expected calibration error; given each
    row's ``distance``, a group's is that of its clips within the reference and that of those
    beyond it, weighted by their shares (so confidence must hold among the far clips too, not
    only on average with the near ones)."""
    correct = np.argmax(probabilities, axis=1) == labels
    confidence = np.max(probabilities, axis=1)
    far = np.zeros(len(labels), bool) if distance is None else np.asarray(distance) > 0
    errors = []
    for g in np.unique(groups):
        mine = groups == g
        error = 0.0
        for side in (mine & far, mine & ~far):
            if side.any():
                share = side.sum() / mine.sum()
                error += share * expected_calibration_error(confidence[side], correct[side])
        errors.append(error)
    return float(np.mean(errors))


def fit_calibration(
    probabilities, labels, groups=None, distance=None, *, tolerance: float = TOLERANCE
) -> dict:
    """The temperature (and, given each row's ``distance``, the slope) minimising the mean
    over ``groups`` of their calibration error (:func:`mean_calibration_error`): of those
    within ``tolerance`` of the smallest error, the steepest slope, with its best temperature
    (:data:`TOLERANCE`); returns ``{"temperature", "slope"}``.

    Parameters
    ----------
    probabilities : np.ndarray [shape=(n, n_classes)]
        Held-out predictions.
    labels : np.ndarray [shape=(n,), dtype=int]
        Their classes.
    groups : np.ndarray [shape=(n,)], optional
        Each row's corpus; all one group if not given.
    distance : np.ndarray [shape=(n,)], optional
        Each row's log distance over the reference (:func:`row_temperatures`).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    groups = np.zeros(len(labels)) if groups is None else np.asarray(groups)
    low, high = np.log(TEMPERATURE_BOUNDS)
    temperatures = np.exp(np.linspace(low, high, TEMPERATURE_STEPS))
    slopes = (0.0,) if distance is None else SLOPES
    found = []
    for slope in slopes:
        for temperature in temperatures:
            candidate = {"temperature": float(temperature), "slope": float(slope)}
            error = mean_calibration_error(
                calibrated(probabilities, candidate, distance), labels, groups, distance
            )
            found.append((error, candidate))
    smallest = min(error for error, _ in found)
    steepest = max(c["slope"] for error, c in found if error <= smallest + tolerance)
    # Exact ties go to the first found: the sharpest temperature.
    return min(
        ((error, c) for error, c in found if c["slope"] == steepest), key=lambda pair: pair[0]
    )[1]


def row_distances(predictions: list[dict]) -> np.ndarray | None:
    """Each held-out row's encoder-state ``distance``, or None when no row has one (a model
    without the encoder)."""
    given = [row.get("distance") is not None for row in predictions]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("held-out predictions with and without an encoder-state distance")
    return np.array([float(row["distance"]) for row in predictions])
