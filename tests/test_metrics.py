import numpy as np
import pytest

from training.metrics import (
    confusion_matrix,
    evaluation_summary,
    merged_confusion,
    unweighted_accuracy,
    weighted_accuracy,
)
from udfs.labels import EMOTIONS, MERGED_CLASSES


def test_ua_differs_from_wa_on_imbalanced_data():
    y_true = np.array([0] * 8 + [1] * 2)
    y_pred = np.array([0] * 8 + [0] * 2)
    matrix = confusion_matrix(y_true, y_pred)
    assert weighted_accuracy(matrix) == pytest.approx(0.8)
    assert unweighted_accuracy(matrix) == pytest.approx(
        0.5
    )  # classes without examples are left out


def test_confusion_rows_are_actual(rng):
    y_true = rng.integers(0, 8, 200)
    y_pred = rng.integers(0, 8, 200)
    matrix = confusion_matrix(y_true, y_pred)
    assert matrix.sum() == 200
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(y_true, minlength=8))
    np.testing.assert_array_equal(matrix.sum(axis=0), np.bincount(y_pred, minlength=8))


def test_merged_confusion_folds_classes(rng):
    y_true = rng.integers(0, 8, 500)
    y_pred = rng.integers(0, 8, 500)
    merged = merged_confusion(confusion_matrix(y_true, y_pred))
    assert merged.shape == (5, 5) and merged.sum() == 500
    groups = list(MERGED_CLASSES.values())
    to_group = {EMOTIONS.index(m): g for g, members in enumerate(groups) for m in members}
    expected = confusion_matrix(
        [to_group[t] for t in y_true], [to_group[p] for p in y_pred], n_classes=5
    )
    np.testing.assert_array_equal(merged, expected)


def test_calm_for_neutral_is_right_in_merged_view():
    y_true = np.array([EMOTIONS.index("neutral")] * 4)
    y_pred = np.array([EMOTIONS.index("calm")] * 4)
    summary = evaluation_summary(y_true, y_pred)
    assert summary["unweighted_accuracy"] == 0.0
    assert summary["merged5_weighted_accuracy"] == 1.0
