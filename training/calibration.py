"""Calibration: a temperature fitted on held-out predictions, so that confidence means what it
says (answers given with confidence 0.9 right about 90 % of the time).

The cross-validation's predictions are of speakers (and, leaving one corpus out, corpora) its
fold models never heard: the audio users bring is like that.  One number is fitted on them, the
temperature minimising their negative log-likelihood, and the final model is wrapped in
:class:`udfs.model_layers.Temperature`.  It changes no decision (the order of the probabilities
stays), only how sure the model says it is.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

#: Temperatures searched (log-spaced bounds): sharper than the network down to ten times softer.
TEMPERATURE_BOUNDS = (0.25, 10.0)


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``probabilities ** (1 / temperature)`` renormalised per row (what ``Temperature`` does)."""
    logits = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), 1e-12)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the mean negative log-likelihood of ``labels``.

    Parameters
    ----------
    probabilities : np.ndarray [shape=(n, n_classes)]
        Held-out predictions.
    labels : np.ndarray [shape=(n,), dtype=int]
        Their classes.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-np.mean(np.log(scaled(probabilities, np.exp(log_t))[rows, labels] + 1e-12)))

    low, high = np.log(TEMPERATURE_BOUNDS)
    result = scipy.optimize.minimize_scalar(nll, bounds=(low, high), method="bounded")
    return float(np.exp(result.x))
