"""Emotion inference UDFs: whole Arrow batches through the model, bad rows to NULL.

``emotion_scores(mfccs [, model])`` and ``emotion(audio [, model])`` are Arrow UDFs:
they receive a batch as Arrow arrays, run the valid rows through the model in one
call, and return NULL for rows that are NULL or cannot be decoded.  Without a
model argument they use the store's active version, read on every batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.functions import arrow_udf

from udfs import model_cache
from udfs.labels import EMOTION_SCORES_DDL, EMOTIONS
from udfs.model_store import ModelStore
from udfs.spark_udfs import clip_features_or_none

MODEL_LIST_DDL = (
    "name string, version int, active boolean, created_utc string, training_view string, "
    "validation_ua double, validation_wa double, cv_ua_mean double, cv_ua_std double, "
    "train_rows int, path string, status string"
)


def predict_probabilities(model, features: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Class probabilities [shape=(n, 8)] for flattened MFCC rows [shape=(n, n_mfcc * n_frames)]."""
    if len(features) == 0:
        return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
    batch = np.asarray(features, dtype=np.float32).reshape((-1, *shape))
    return np.asarray(model.predict_on_batch(batch), dtype=np.float32)


def _model_per_row(store: ModelStore, references: tuple[pa.Array, ...], n: int) -> list[str]:
    if not references:
        return [store.active_reference()] * n
    values = references[0].to_pylist()
    return [store.active_reference() if v is None else v for v in values]


def _scores_by_model(store: ModelStore, rows: list[int], features: list[np.ndarray], models: list[str], n: int) -> np.ndarray:
    """Probabilities for ``rows`` (others stay NaN), one model call per distinct model."""
    shape = store.features.shape
    out = np.full((n, len(EMOTIONS)), np.nan, dtype=np.float32)
    for reference in sorted({models[i] for i in rows}):
        chosen = [k for k, i in enumerate(rows) if models[i] == reference]
        model = model_cache.get_model(store.resolve(reference))
        probabilities = predict_probabilities(model, np.stack([features[k] for k in chosen]), shape)
        out[[rows[k] for k in chosen]] = probabilities
    return out


def _struct(probabilities: np.ndarray, valid: np.ndarray) -> pa.StructArray:
    columns = [pa.array(probabilities[:, i], type=pa.float32()) for i in range(len(EMOTIONS))]
    return pa.StructArray.from_arrays(columns, names=list(EMOTIONS), mask=pa.array(~valid))


def make_emotion_scores_udf(store: ModelStore):
    expected = store.features.n_mfcc * store.features.n_frames

    @arrow_udf(EMOTION_SCORES_DDL)
    def emotion_scores(mfccs: pa.Array, *model: pa.Array) -> pa.Array:
        model_cache.warm(store)
        n = len(mfccs)
        if not (pa.types.is_list(mfccs.type) or pa.types.is_large_list(mfccs.type)) or not pa.types.is_floating(mfccs.type.value_type):
            return pa.nulls(n, type=_struct(np.zeros((0, len(EMOTIONS))), np.zeros(0, bool)).type)
        lengths = pc.fill_null(pc.list_value_length(mfccs), 0).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(mfccs).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        ends = np.cumsum(lengths)
        rows, features = [], []
        for i in range(n):
            if lengths[i] == expected and mfccs[i].is_valid:
                chunk = flat[ends[i] - expected : ends[i]]
                if np.all(np.isfinite(chunk)):
                    rows.append(i)
                    features.append(chunk)
        valid = np.zeros(n, dtype=bool)
        valid[rows] = True
        probabilities = _scores_by_model(store, rows, features, _model_per_row(store, model, n), n)
        return _struct(np.nan_to_num(probabilities), valid)

    return emotion_scores


def make_emotion_udf(store: ModelStore, audio_roots: Sequence[str], *, strict: bool = False):
    roots = tuple(audio_roots)

    @arrow_udf("string")
    def emotion(audio: pa.Array, *model: pa.Array) -> pa.Array:
        model_cache.warm(store)
        values = audio.to_pylist()
        n = len(values)
        rows, features = [], []
        for i, value in enumerate(values):
            computed = clip_features_or_none(value, roots, store.features, strict=strict)
            if computed is not None:
                rows.append(i)
                features.append(computed)
        probabilities = _scores_by_model(store, rows, features, _model_per_row(store, model, n), n)
        labels = [None] * n
        for i in rows:
            labels[i] = EMOTIONS[int(np.argmax(probabilities[i]))]
        return pa.array(labels, type=pa.string())

    return emotion


def make_activate_model_udf(store: ModelStore):
    @arrow_udf("string")
    def activate_model(reference: pa.Array) -> pa.Array:
        activated = []
        for value in reference.to_pylist():
            info = store.activate(value)
            activated.append(f"{info.path.parent.name}/{info.path.name}")
        return pa.array(activated, type=pa.string())

    return activate_model


def model_rows(store: ModelStore):
    """One row per model version on disk, broken ones included with their problem in ``status``."""
    from training.artifacts import read_json

    active = store.active_reference()
    for path in store.versions():
        reference = f"{path.parent.name}/{path.name}"
        try:
            info = store.resolve(reference)
            metrics = read_json(info.path / "metrics.json") if (info.path / "metrics.json").exists() else {}
            validation = metrics.get("validation", {})
            cv = metrics.get("cross_validation", {})
            manifest = info.manifest
            yield (
                path.parent.name, int(path.name), reference == active, manifest.get("created_utc"), manifest.get("view"),
                validation.get("unweighted_accuracy"), validation.get("weighted_accuracy"),
                cv.get("unweighted_accuracy_mean"), cv.get("unweighted_accuracy_std"),
                manifest.get("train_rows"), str(path), "ok",
            )
        except Exception as exc:  # a broken directory is listed, not hidden
            yield (path.parent.name, int(path.name), reference == active, None, None, None, None, None, None, None, str(path), str(exc))


def make_emotion_models_udtf(store: ModelStore):
    from pyspark.sql.functions import udtf

    @udtf(returnType=MODEL_LIST_DDL)
    class EmotionModels:
        def eval(self):
            yield from model_rows(store)

    return EmotionModels
