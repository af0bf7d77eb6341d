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


def test_expected_calibration_error_is_the_weighted_gap_between_confidence_and_accuracy():
    from training.metrics import expected_calibration_error

    # Answers at 0.95 right 95 % of the time: calibrated.
    confidence = np.full(100, 0.95)
    assert expected_calibration_error(confidence, np.arange(100) < 95) == pytest.approx(0.0)
    # Half the answers at 0.9 (all wrong), half at 0.3 (all right): gaps 0.9 and 0.7.
    confidence = np.array([0.9] * 10 + [0.3] * 10)
    correct = np.array([False] * 10 + [True] * 10)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.8)


def test_corpus_figures_decide_among_the_corpus_emotions_and_report_calibration():
    from training.metrics import corpus_figures, figures_by_corpus

    four = ["neutral", "happy", "sad", "angry"]
    y = np.array([EMOTIONS.index(name) for name in four])
    probabilities = np.full((4, 8), 0.01)
    probabilities[:, EMOTIONS.index("surprised")] = 0.6  # the model's answer: surprised
    for row, name in enumerate(four):
        probabilities[row, EMOTIONS.index(name)] = 0.3  # but the right one among the four
    figures = corpus_figures(y, probabilities, four)
    assert figures["unweighted_accuracy"] == pytest.approx(1.0)
    assert figures["emotions"] == ["neutral", "happy", "sad", "angry"]
    assert sorted(figures["per_class_recall"]) == sorted(four)
    # Calibration is of the answer a user sees (surprised at 0.6, always wrong).
    assert figures["expected_calibration_error"] == pytest.approx(0.6)
    assert figures["confident_share"] == 0.0 and figures["confident_accuracy"] is None
    rows = [
        {"corpus": "a", "label": name, "probabilities": list(p)}
        for name, p in zip(four, probabilities)
    ]
    rows += [{"corpus": "b", "label": "surprised", "probabilities": list(probabilities[0])}]
    summary = figures_by_corpus(rows, {"a": four, "b": ["surprised", "neutral"]})
    assert summary["corpora"]["b"]["unweighted_accuracy"] == 1.0
    assert summary["unweighted_accuracy_mean"] == pytest.approx(1.0)
