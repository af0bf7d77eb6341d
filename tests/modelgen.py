"""Small model versions for the tests, written in the real model-directory format."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from training import artifacts
from training.network import build_model
from udfs.features import DEFAULT_FEATURES, FeatureConfig
from udfs.labels import EMOTIONS
from udfs.model_format import MODEL_FILE


def write_biased_model(
    models_dir: Path,
    name: str,
    version: int,
    *,
    favour: str,
    features: FeatureConfig = DEFAULT_FEATURES,
) -> Path:
    """An untrained small CNN whose output bias makes ``favour`` the most likely label for any
    input."""
    import keras

    model = build_model(
        input_shape=features.shape,
        n_classes=len(EMOTIONS),
        prosody_rows=features.prosody_rows,
        filters=(4, 4, 4, 4, 4, 4),
    )
    output = model.layers[-1]
    kernel, bias = output.get_weights()
    bias = np.zeros_like(bias)
    bias[EMOTIONS.index(favour)] = 20.0
    output.set_weights([np.zeros_like(kernel), bias])
    directory = models_dir / name / str(version)
    directory.mkdir(parents=True)
    model.save(directory / MODEL_FILE)
    manifest = {
        "name": name,
        "version": version,
        "created_utc": "2026-11-25T00:00:00+00:00",
        "view": "generated",
        "train_rows": 0,
    }
    artifacts.write_descriptor(directory, manifest=manifest, features=features)
    del keras
    return directory


def other_features() -> FeatureConfig:
    """Not the server's features: fewer coefficients, and the prosody rows switched the other
    way."""
    return dataclasses.replace(DEFAULT_FEATURES, n_mfcc=20, pitch=not DEFAULT_FEATURES.pitch)
