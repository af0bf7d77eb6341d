"""Writing a versioned model directory: reports, predictions and the descriptor files.

The directory's layout, and how it is read, are :mod:`udfs.model_format`'s.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from udfs.features import FeatureConfig
from udfs.labels import EMOTIONS
from udfs.model_format import (
    FEATURES_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
)


def next_version(roots: list[Path], name: str) -> int:
    """One more than the highest integer version of ``name`` under any of ``roots`` (1 for a new
    name)."""
    existing = [
        int(p.name) for root in roots for p in (Path(root) / name).glob("*") if p.name.isdigit()
    ]
    return max(existing, default=0) + 1


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_descriptor(directory: Path, *, manifest: dict, features: FeatureConfig) -> None:
    """The files that make a directory holding ``model.keras`` a loadable model version."""
    write_json(directory / FEATURES_FILE, features.to_dict())
    write_json(directory / LABELS_FILE, list(EMOTIONS))
    write_json(directory / MANIFEST_FILE, manifest)


def write_confusion_csv(path: Path, matrix: np.ndarray, labels=EMOTIONS) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["actual\\predicted", *labels])
        for label, row in zip(labels, matrix):
            writer.writerow([label, *map(int, row)])


def plot_confusion(path: Path, matrix: np.ndarray, *, title: str, labels=EMOTIONS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(7, 6))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            axes.text(
                j,
                i,
                str(int(matrix[i, j])),
                ha="center",
                va="center",
                color="white" if shares[i, j] > 0.5 else "black",
                fontsize=8,
            )
    figure.colorbar(image, ax=axes, label="share of actual class")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_curves(path: Path, history: dict[str, list[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for key, values in sorted(history.items()):
        target = loss_axes if "loss" in key else accuracy_axes
        target.plot(range(1, len(values) + 1), values, label=key)
    loss_axes.set_title("loss")
    accuracy_axes.set_title("accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.set_xlabel("epoch")
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_cv_predictions(path: Path, predictions: list[dict]) -> None:
    """One row per cross-validation test clip: what the cross-validation held out (``corpus`` or
    ``speaker``), fold, corpus, speaker, the clip's SHA-256, label, decision, probabilities.

    ``predictions``: dicts with ``cv_by``, ``fold``, ``corpus``, ``speaker``, ``clip_sha256``,
    ``label`` and ``probabilities`` (the fold model's, in :data:`EMOTIONS` order), and the
    encoder states' ``distance`` (empty for a model without the encoder).  The SHA-256
    is of the clip's audio bytes, so ``sha2(content, 256)`` finds the clip in its table, and runs
    can be compared clip by clip.
    """
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "cv_by",
                "fold",
                "corpus",
                "speaker",
                "clip_sha256",
                "label",
                "predicted",
                *EMOTIONS,
                "distance",
            ]
        )
        for row in predictions:
            probabilities = np.asarray(row["probabilities"], dtype=np.float64)
            writer.writerow(
                [
                    row["cv_by"],
                    row["fold"],
                    row["corpus"],
                    row["speaker"],
                    row["clip_sha256"],
                    row["label"],
                    EMOTIONS[int(np.argmax(probabilities))],
                    # Nine significant digits: small probabilities matter once raised to 1 / T.
                    *(f"{p:.9g}" for p in probabilities),
                    "" if row.get("distance") is None else f"{row['distance']:.9g}",
                ]
            )


def write_confusion(directory: Path, matrix: np.ndarray, *, title: str) -> None:
    """A model directory's confusion matrix, as confusion.csv and confusion.png."""
    write_confusion_csv(directory / "confusion.csv", matrix)
    plot_confusion(directory / "confusion.png", matrix, title=title)


def write_reports(directory: Path, *, metrics: dict, history: dict[str, list[float]]) -> None:
    """metrics.json, confusion matrix as CSV and PNG, training curves as PNG."""
    write_json(directory / METRICS_FILE, metrics)
    write_json(directory / HISTORY_FILE, history)
    # Without validation speakers, the cross-validation's pooled test speakers.
    source, title = (
        ("validation", "validation speakers: confusion")
        if "validation" in metrics
        else ("cross_validation", "cross-validation, unseen speakers: confusion")
    )
    write_confusion(directory, np.asarray(metrics[source]["confusion"]), title=title)
    if history:
        plot_curves(directory / "curves.png", history)
