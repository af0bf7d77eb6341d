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
