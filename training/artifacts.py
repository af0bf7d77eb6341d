"""The versioned model directory: what a trained model is on disk, written and read here only.

``<models_dir>/<name>/<version>/`` holds

- ``model.keras``: the Keras model (input: MFCC matrix, output: softmax over ``labels.json``);
- ``features.json``: the :class:`~udfs.features.FeatureConfig` it was trained on; inference
  refuses a model whose features differ from the server's;
- ``labels.json``: the label order of the output units;
- ``manifest.json``: name, version, creation time, training view, file-list digest, speakers,
  hyper-parameters, epochs, timings;
- ``view.sql``: the SQL text of the training view;
- ``metrics.json``, ``confusion.csv``, ``confusion.png``, ``curves.png``, ``history.json``;
- ``cv_predictions.csv`` after a cross-validation: every fold's test clips with their probabilities.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from udfs.errors import ModelError
from udfs.features import FeatureConfig
from udfs.labels import EMOTIONS

MODEL_FILE = "model.keras"
FEATURES_FILE = "features.json"
LABELS_FILE = "labels.json"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
VIEW_FILE = "view.sql"
HISTORY_FILE = "history.json"
CV_PREDICTIONS_FILE = "cv_predictions.csv"
REQUIRED_FILES = (MODEL_FILE, FEATURES_FILE, LABELS_FILE, MANIFEST_FILE)

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def check_model_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ModelError(f"model name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return name


def next_version(roots: list[Path], name: str) -> int:
    """One more than the highest integer version of ``name`` under any of ``roots`` (1 for a new name)."""
    existing = [
        int(p.name) for root in roots for p in (Path(root) / name).glob("*") if p.name.isdigit()
    ]
    return max(existing, default=0) + 1


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model file {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model file {path} is unreadable: {exc}") from None


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
    """One row per cross-validation test clip: fold, speaker, the clip's SHA-256, label, decision, probabilities.

    ``predictions``: dicts with ``fold``, ``speaker``, ``clip_sha256``, ``label`` (name) and
    ``probabilities`` (the fold model's, in :data:`EMOTIONS` order).  The SHA-256 is of the clip's
    audio bytes, so ``sha2(content, 256)`` finds the clip in its table, and runs can be compared clip by clip.
    """
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fold", "speaker", "clip_sha256", "label", "predicted", *EMOTIONS])
        for row in predictions:
            probabilities = np.asarray(row["probabilities"], dtype=np.float64)
            writer.writerow(
                [
                    row["fold"],
                    row["speaker"],
                    row["clip_sha256"],
                    row["label"],
                    EMOTIONS[int(np.argmax(probabilities))],
                    *(f"{p:.6f}" for p in probabilities),
                ]
            )


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
    matrix = np.asarray(metrics[source]["confusion"])
    write_confusion_csv(directory / "confusion.csv", matrix)
    plot_confusion(directory / "confusion.png", matrix, title=title)
    if history:
        plot_curves(directory / "curves.png", history)


@dataclass(frozen=True)
class ModelInfo:
    """A model directory that passed every check; the Keras model itself is loaded lazily."""

    path: Path
    name: str
    version: int
    features: FeatureConfig
    labels: tuple[str, ...]
    manifest: dict

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE


def describe_mismatch(expected: FeatureConfig, found: FeatureConfig) -> str:
    """``expects other features than the server computes: <setting> <model's> (server: <server's>), ...``."""
    wanted, found = expected.to_dict(), found.to_dict()
    differences = [
        f"{key} {found.get(key)!r} (server: {wanted.get(key)!r})"
        for key in sorted(set(wanted) | set(found))
        if found.get(key) != wanted.get(key)
    ]
    return "expects other features than the server computes: " + ", ".join(differences)


def read_model_dir(path: Path, *, expected_features: FeatureConfig | None = None) -> ModelInfo:
    """Check a model directory and return its description; raises ModelError naming the problem."""
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model directory {path} does not exist")
    for required in REQUIRED_FILES:
        if not (path / required).is_file():
            raise ModelError(f"model directory {path} has no {required}")
    features = read_json(path / FEATURES_FILE)
    labels = tuple(read_json(path / LABELS_FILE))
    manifest = read_json(path / MANIFEST_FILE)
    if labels != EMOTIONS:
        raise ModelError(f"model {path} has labels {list(labels)}, expected {list(EMOTIONS)}")
    try:
        config = FeatureConfig.from_dict(features)
    except TypeError as exc:
        raise ModelError(f"model {path} has an unreadable {FEATURES_FILE}: {exc}") from None
    # Compared as configurations: a features.json written before a setting existed means its default.
    if expected_features is not None and config != expected_features:
        raise ModelError(f"model {path} {describe_mismatch(expected_features, config)}")
    return ModelInfo(
        path=path,
        name=str(manifest.get("name", path.parent.name)),
        version=int(manifest.get("version", path.name if path.name.isdigit() else 0)),
        features=config,
        labels=labels,
        manifest=manifest,
    )


def load_keras_model(info: ModelInfo):
    """The Keras model of a checked directory; raises ModelError if the file is corrupt."""
    return load_keras_model_file(info.model_file)


def load_keras_model_file(path: Path):
    """Load a ``model.keras`` file; raises ModelError if it is missing or corrupt."""
    import keras

    import training.model  # noqa: F401  registers the custom layers the file refers to

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises ValueError, OSError, zipfile errors... for a bad file
        raise ModelError(
            f"model file {path} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
