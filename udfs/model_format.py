"""The versioned model directory: what a trained model is on disk, and how it is read.

The trainer writes these directories (:mod:`training.artifacts`); the server reads them here.

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
- ``voice_head.json`` (optional): the voice head ``emotion_relative``'s voice form uses
  (:mod:`udfs.voice`).

``metrics.json`` holds a run's cross-validations: the first it ran (``--cv-by``) under
``cross_validation``, each further one under ``cross_validation_by_<kind>``
(:func:`cross_validation_key`); :func:`cross_validations` reads them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

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

#: What a cross-validation holds out (``emoticana train --cv-by``, a summary's ``by``), and how
#: ``emotion_model_figures()`` names it: corpora never heard, speakers never heard.
CV_EVALUATIONS = {"corpus": "corpus left out", "speaker": "unseen speakers"}


def cross_validation_key(kind: str, *, first: bool) -> str:
    """Where ``metrics.json`` keeps a cross-validation by ``kind`` (``corpus``, ``speaker``)."""
    return "cross_validation" if first else f"cross_validation_by_{kind}"


def cross_validations(metrics: dict) -> list[dict]:
    """Every cross-validation summary in ``metrics.json``'s content, the first one first."""
    found = [metrics.get("cross_validation")] + [
        value for key, value in sorted(metrics.items()) if key.startswith("cross_validation_by_")
    ]
    return [value for value in found if isinstance(value, dict)]


_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def check_model_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ModelError(f"model name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return name


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model file {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model file {path} is unreadable: {exc}") from None


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
    """The mismatch as ``expects other features than the server computes: <setting> <model's>
    (server: <server's>), ...``."""
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
    # Compared as configurations: a features.json written before a setting existed means its
    # default.
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

    import udfs.model_layers  # noqa: F401  registers the custom layers the file refers to

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises ValueError, OSError, zipfile errors... for a bad file
        raise ModelError(
            f"model file {path} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
