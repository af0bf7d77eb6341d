"""Classification metrics over the label order of ``udfs.labels``; pure numpy."""

from __future__ import annotations

import numpy as np

from udfs.labels import EMOTIONS, MERGED_CLASSES


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, *, n_classes: int = len(EMOTIONS)
) -> np.ndarray:
    """Counts [shape=(n_classes, n_classes)], rows = actual class, columns = predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def per_class_recall(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for a class with no examples."""
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)


def unweighted_accuracy(matrix: np.ndarray) -> float:
    """Mean per-class recall over the classes that have examples (UA)."""
    return float(np.nanmean(per_class_recall(matrix)))


def weighted_accuracy(matrix: np.ndarray) -> float:
    """Plain accuracy: correct / all (WA)."""
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else float("nan")


def merged_confusion(matrix: np.ndarray) -> np.ndarray:
    """Fold an 8-class confusion matrix into the seed's five merged classes."""
    groups = [[EMOTIONS.index(member) for member in members] for members in MERGED_CLASSES.values()]
    merged = np.zeros((len(groups), len(groups)), dtype=matrix.dtype)
    for i, rows in enumerate(groups):
        for j, cols in enumerate(groups):
            merged[i, j] = matrix[np.ix_(rows, cols)].sum()
    return merged


def evaluation_summary(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Every figure a model directory records, as JSON-ready values."""
    matrix = confusion_matrix(y_true, y_pred)
    merged = merged_confusion(matrix)
    recall = per_class_recall(matrix)
    return {
        "n": int(matrix.sum()),
        "unweighted_accuracy": unweighted_accuracy(matrix),
        "weighted_accuracy": weighted_accuracy(matrix),
        "per_class_recall": {
            name: (None if np.isnan(r) else float(r)) for name, r in zip(EMOTIONS, recall)
        },
        "merged5_unweighted_accuracy": unweighted_accuracy(merged),
        "merged5_weighted_accuracy": weighted_accuracy(merged),
        "confusion": matrix.tolist(),
        "merged5_confusion": merged.tolist(),
    }


#: Confidence bins of the expected calibration error.
CALIBRATION_BINS = 15
#: Users filter on confidence at this level; how often such answers are right is reported.
CONFIDENT = 0.9


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, *, bins: int = CALIBRATION_BINS
) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by
    the share of answers in each bin (Guo et al. 2017); NaN without answers."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    if confidence.size == 0:
        return float("nan")
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(gap)


def corpus_figures(y_true: np.ndarray, probabilities: np.ndarray, emotions) -> dict:
    """A corpus's figures: decisions among its own ``emotions``, and the calibration of answers.

    Parameters
    ----------
    y_true : np.ndarray [shape=(n,), dtype=int]
        Class indices (label order of :data:`udfs.labels.EMOTIONS`).
    probabilities : np.ndarray [shape=(n, n_classes)]
        The model's output.
    emotions : iterable of str
        The emotions the corpus has: UA, recall and confusion count decisions among these
        (the most probable of them), so a corpus of four emotions is not charged for answers
        it has no label for.  Calibration is of the model's own answer (the most probable of
        all) and its probability, as a user filtering on confidence sees it.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    mask = np.array([name in set(emotions) for name in EMOTIONS], dtype=float)
    decided = np.argmax(probabilities * mask, axis=1)
    matrix = confusion_matrix(y_true, decided)
    recall = per_class_recall(matrix)
    answer = np.argmax(probabilities, axis=1)
    confidence = probabilities.max(axis=1)
    correct = answer == y_true
    confident = confidence >= CONFIDENT
    return {
        "n": int(len(y_true)),
        "emotions": [name for name in EMOTIONS if name in set(emotions)],
        "unweighted_accuracy": unweighted_accuracy(matrix),
        "weighted_accuracy": weighted_accuracy(matrix),
        "per_class_recall": {
            name: float(r) for name, r in zip(EMOTIONS, recall) if not np.isnan(r)
        },
        "confusion": matrix.tolist(),
        "expected_calibration_error": expected_calibration_error(confidence, correct),
        "confident_share": float(confident.mean()) if len(y_true) else float("nan"),
        "confident_accuracy": float(correct[confident].mean()) if confident.any() else None,
    }


def figures_by_corpus(predictions: list[dict], corpora: dict[str, list[str]]) -> dict:
    """:func:`corpus_figures` for each corpus of ``predictions`` (rows with ``corpus``,
    ``label`` and ``probabilities``), and their mean UA and calibration error."""
    by_corpus = {}
    for name in sorted({row["corpus"] for row in predictions}):
        rows = [row for row in predictions if row["corpus"] == name]
        by_corpus[name] = corpus_figures(
            np.array([EMOTIONS.index(row["label"]) for row in rows]),
            np.array([row["probabilities"] for row in rows]),
            corpora[name],
        )
    figures = list(by_corpus.values())
    return {
        "corpora": by_corpus,
        "unweighted_accuracy_mean": float(np.mean([f["unweighted_accuracy"] for f in figures])),
        "unweighted_accuracy_min": float(np.min([f["unweighted_accuracy"] for f in figures])),
        "expected_calibration_error_mean": float(
            np.mean([f["expected_calibration_error"] for f in figures])
        ),
    }
