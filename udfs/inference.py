"""Emotion inference UDFs: whole Arrow batches through the model, bad rows to NULL.

``emotion_scores(mfccs [, model])`` and ``emotion(audio [, model])`` are Arrow UDFs:
they receive a batch as Arrow arrays, run the valid rows through the model in one
call, and return NULL for rows that are NULL or cannot be decoded.  Without a
model argument they use the store's active version, read on every batch.  A model
named in the call may expect other features than the server's ``mfcc`` (a version
from before a feature change): ``emotion`` computes that model's own features, and
``emotion_scores`` takes arrays of that model's shape (others are NULL rows).

Given audio (``emotion``, or ``emotion_scores`` of a path or bytes), a clip whose speech fits
the model's window is answered exactly as ``emotion_scores(mfcc(audio))``; a longer recording
is answered for all of it: the probabilities of its ``emotion_segments`` averaged, weighted by
duration (``udfs/segments.py``).  A long recording without speech is a NULL row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.functions import arrow_udf

from udfs import model_cache
from udfs.errors import AudioError, ModelError
from udfs.labels import EMOTION_SCORES_DDL, EMOTIONS
from udfs.model_format import (
    CV_EVALUATIONS,
    METRICS_FILE,
    ModelInfo,
    cross_validations,
    read_json,
)
from udfs.model_store import ModelStore
from udfs.segments import (
    EMOTION_SEGMENTS_DDL,
    clip_features_if_short,
    error_row,
    source_segments,
    weighted_scores,
)
from udfs.spark_udfs import describe_source

MODEL_LIST_DDL = (
    "name string, version int, active boolean, created_utc string, training_view string, "
    "validation_ua double, validation_wa double, cv_ua_mean double, cv_ua_std double, "
    "train_rows int, path string, status string"
)

#: ``emotion_model_figures()``: a model's cross-validation figures, one row per corpus of each
#: cross-validation (decisions among the corpus's own emotions; calibration of the answers the
#: model gives, after its temperature when it has one).
MODEL_FIGURES_DDL = (
    "name string, version int, evaluation string, corpus string, emotions array<string>, "
    "clips int, unweighted_accuracy double, weighted_accuracy double, "
    "per_class_recall map<string,double>, confusion array<array<int>>, "
    "calibration_error double, confident_share double, confident_accuracy double"
)


def predict_probabilities(model, features: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Class probabilities [shape=(n, 8)] for flattened feature rows
    [shape=(n, rows * n_frames)]."""
    if len(features) == 0:
        return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
    batch = np.asarray(features, dtype=np.float32).reshape((-1, *shape))
    return np.asarray(model.predict_on_batch(batch), dtype=np.float32)


def models_per_row(
    store: ModelStore, references: tuple[pa.Array, ...], n: int
) -> tuple[list[str], dict[str, ModelInfo]]:
    """Each row's model reference (the active one where none is given) and every referenced model,
    checked.

    A model asked for by name may expect other features than the server's ``mfcc``
    computes (e.g. a version from before a feature change): it is used with its own.
    """
    if not references:
        models = [store.active_reference()] * n
    else:
        models = [store.active_reference() if v is None else v for v in references[0].to_pylist()]
    return models, {
        reference: store.resolve(reference, same_features=False)
        for reference in sorted(set(models))
    }


def _predict_rows(
    info: ModelInfo, rows: list[int], features: list[np.ndarray], out: np.ndarray
) -> list[int]:
    """Write the probabilities of ``rows`` (flattened features in the same order) into ``out``;
    returns the rows answered.  Features far outside any audio's (an array of 1e6 everywhere)
    can overflow the network: such a row gets no probabilities rather than NaN ones."""
    if not rows:
        return []
    model = model_cache.get_model(info)
    predicted = predict_probabilities(model, np.stack(features), info.features.shape)
    finite = np.all(np.isfinite(predicted), axis=1)
    answered = [row for row, ok in zip(rows, finite, strict=True) if ok]
    out[answered] = predicted[finite]
    return answered


def _struct(probabilities: np.ndarray, valid: np.ndarray) -> pa.StructArray:
    columns = [
        pa.array(probabilities[:, i].astype(np.float64), type=pa.float64())
        for i in range(len(EMOTIONS))
    ]
    return pa.StructArray.from_arrays(columns, names=list(EMOTIONS), mask=pa.array(~valid))


def _scores(store, audio_roots, mfccs: pa.Array, model, strict: bool) -> pa.StructArray:
    """``emotion_scores`` of a batch: of audio, or of feature arrays (NULL for a bad one)."""
    n = len(mfccs)
    if _is_audio(mfccs.type):
        probabilities, valid = _audio_probabilities(store, audio_roots, mfccs, model, strict)
        return _struct(probabilities, valid)
    if not (
        pa.types.is_list(mfccs.type) or pa.types.is_large_list(mfccs.type)
    ) or not pa.types.is_floating(mfccs.type.value_type):
        return pa.nulls(n, type=_struct(np.zeros((0, len(EMOTIONS))), np.zeros(0, bool)).type)
    lengths = pc.fill_null(pc.list_value_length(mfccs), 0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(mfccs).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    ends = np.cumsum(lengths)
    models, infos = models_per_row(store, model, n)
    probabilities = np.zeros((n, len(EMOTIONS)), dtype=np.float32)
    valid = np.zeros(n, dtype=bool)
    for reference, info in infos.items():
        # An array of another model's features is a bad row.
        expected = int(np.prod(info.features.shape))
        rows, features = [], []
        for i in range(n):
            if models[i] == reference and lengths[i] == expected and mfccs[i].is_valid:
                chunk = flat[ends[i] - expected : ends[i]]
                if np.all(np.isfinite(chunk)):
                    rows.append(i)
                    features.append(chunk)
        valid[_predict_rows(info, rows, features, probabilities)] = True
    return _struct(probabilities, valid)


def make_emotion_scores_udf(
    store: ModelStore, audio_roots: Sequence[str] = (), *, strict: bool = False
):
    audio_roots = tuple(audio_roots)

    @arrow_udf(EMOTION_SCORES_DDL)
    def emotion_scores(mfccs: pa.Array, *model: pa.Array) -> pa.Array:
        scores = _scores(store, audio_roots, mfccs, model, strict)
        model_cache.warm(store)
        return scores

    return emotion_scores


def _is_audio(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def _bad_row(source, exc: AudioError, strict: bool) -> None:
    if strict:
        raise AudioError(f"strict mode: cannot use {describe_source(source)}: {exc}") from None


def _predictor(info: ModelInfo):
    model = model_cache.get_model(info)
    return lambda features: predict_probabilities(
        model, features.reshape(len(features), -1), info.features.shape
    )


def _audio_probabilities(
    store: ModelStore,
    roots: tuple[str, ...],
    audio: pa.Array,
    model: tuple[pa.Array, ...],
    strict: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [shape=(n, 8)] and validity of audio rows: short clips batched through the
    model as ``mfcc`` features, longer recordings analysed whole (duration-weighted segments)."""
    values = audio.to_pylist()
    n = len(values)
    models, infos = models_per_row(store, model, n)
    probabilities = np.zeros((n, len(EMOTIONS)), dtype=np.float32)
    valid = np.zeros(n, dtype=bool)
    for config in dict.fromkeys(info.features for info in infos.values()):
        # Each clip is decoded and featurised once per feature configuration its models need.
        needing = [i for i in range(n) if infos[models[i]].features == config]
        short, long = {}, []
        for i in needing:
            try:
                features = clip_features_if_short(values[i], roots, config=config)
            except AudioError as exc:
                _bad_row(values[i], exc, strict)
                continue
            if features is None:
                long.append(i)
            else:
                short[i] = features.ravel()
        for reference, info in infos.items():
            if info.features == config:
                rows = [i for i in short if models[i] == reference]
                valid[_predict_rows(info, rows, [short[i] for i in rows], probabilities)] = True
        for i in long:
            try:
                segments = list(
                    source_segments(values[i], roots, _predictor(infos[models[i]]), config=config)
                )
                scores = weighted_scores(segments)
                if scores is None:
                    raise AudioError("no speech found in the recording")
            except AudioError as exc:
                _bad_row(values[i], exc, strict)
                continue
            probabilities[i], valid[i] = scores, True
    return probabilities, valid


def make_emotion_udf(store: ModelStore, audio_roots: Sequence[str], *, strict: bool = False):
    roots = tuple(audio_roots)

    @arrow_udf("string")
    def emotion(audio: pa.Array, *model: pa.Array) -> pa.Array:
        probabilities, valid = _audio_probabilities(store, roots, audio, model, strict)
        model_cache.warm(store)
        labels = [
            EMOTIONS[int(np.argmax(probabilities[i]))] if valid[i] else None
            for i in range(len(audio))
        ]
        return pa.array(labels, type=pa.string())

    return emotion


def make_emotion_segments_udtf(
    store: ModelStore, audio_roots: Sequence[str], *, strict: bool = False
):
    """``emotion_segments(audio [, model])``: one row per analysed stretch of speech.

    A recording that cannot be read gives one row of NULLs with the reason in ``error`` (in
    strict mode it fails the query); silence gives no rows.
    """
    from pyspark.sql.functions import udtf

    roots = tuple(audio_roots)

    @udtf(returnType=EMOTION_SEGMENTS_DDL)
    class EmotionSegments:
        def eval(self, audio, model=None):
            info = store.resolve(
                store.active_reference() if model is None else model, same_features=False
            )
            if isinstance(audio, (bytearray, memoryview)):
                audio = bytes(audio)
            try:
                for segment in source_segments(
                    audio, roots, _predictor(info), config=info.features
                ):
                    yield segment.row()
            except AudioError as exc:
                _bad_row(audio, exc, strict)
                yield error_row(str(exc))
            model_cache.warm(store)

    return EmotionSegments


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
    """One row per model version on disk, broken ones included with their problem in ``status``.

    A model whose features differ from the server's works by name only (``emotion(content,
    'name/version')``) and cannot be activated; its status says so and why.
    """
    from udfs.model_format import describe_mismatch

    active = store.active_reference()
    for path in store.versions():
        reference = f"{path.parent.name}/{path.name}"
        try:
            info = store.resolve(reference, same_features=False)
            status = "ok"
            if info.features != store.features:
                status = "ok by name only, cannot be active: " + describe_mismatch(
                    store.features, info.features
                )
            metrics = (
                read_json(info.path / METRICS_FILE) if (info.path / METRICS_FILE).exists() else {}
            )
            if not isinstance(metrics, dict):  # the model works; it has no figures to show
                metrics = {}
            validation = metrics.get("validation", {})
            cv = metrics.get("cross_validation", {})
            manifest = info.manifest
            yield (
                path.parent.name,
                int(path.name),
                reference == active,
                manifest.get("created_utc"),
                manifest.get("view"),
                validation.get("unweighted_accuracy"),
                validation.get("weighted_accuracy"),
                cv.get("unweighted_accuracy_mean"),
                cv.get("unweighted_accuracy_std"),
                manifest.get("train_rows"),
                str(path),
                status,
            )
        except Exception as exc:  # a broken directory is listed, not hidden
            yield (
                path.parent.name,
                int(path.name),
                reference == active,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                str(path),
                str(exc),
            )


def model_figure_rows(store: ModelStore):
    """One row per corpus of every cross-validation of every readable model version.

    The figures are of the answers the model gives: after its temperature (the first
    cross-validation's are the calibration's ``held_out``, each corpus's with a temperature fitted
    on the other corpora's predictions, or without it ``after``, fitted on them all; a further
    one's ``by_corpus_after_temperature``), else as the folds gave them.
    ``confusion``'s rows are the true emotions and its columns the decisions, both in
    :data:`udfs.labels.EMOTIONS` order.  Models without such figures, and broken versions (which
    ``emotion_models()`` lists with their problem), have no rows.
    """
    for path in store.versions():
        try:
            store.resolve(f"{path.parent.name}/{path.name}", same_features=False)
            metrics = read_json(path / METRICS_FILE)
        except ModelError:  # broken, or no metrics: nothing to show
            continue
        if not isinstance(metrics, dict):
            continue
        calibration = metrics.get("calibration")
        # The answers' calibration on each corpus with a temperature fitted without it, where the
        # model has those; the decisions are the same.
        calibrated = (
            calibration.get("held_out") or calibration.get("after")
            if isinstance(calibration, dict)
            else None
        )
        for cv in cross_validations(metrics):
            evaluation = CV_EVALUATIONS.get(cv.get("by"), cv.get("by"))
            for suffix, figures in (
                (
                    "",
                    cv.get("by_corpus_after_temperature")
                    # the temperature was fitted on the first cross-validation's predictions
                    or (calibrated if cv is metrics.get("cross_validation") else None)
                    or cv.get("by_corpus"),
                ),
                *((suffix, cv.get(key)) for key, suffix in GROUPED_EVALUATIONS.items()),
            ):
                yield from _figure_rows(path, f"{evaluation}{suffix}", figures)


#: The grouped answers' figures in a cross-validation summary (``training.voice_head``), and
#: what ``emotion_model_figures()`` adds to the evaluation's name for them.
GROUPED_EVALUATIONS = {
    "by_corpus_against_speaker": ", against speaker",
    "by_corpus_against_speaker_and_voice": ", against speaker and voice",
}


def _figure_rows(path, evaluation: str, figures):
    corpora = figures.get("corpora") if isinstance(figures, dict) else None
    if isinstance(corpora, dict):
        for corpus, f in sorted(corpora.items()):
            if isinstance(f, dict):
                yield (
                    path.parent.name,
                    int(path.name),
                    evaluation,
                    corpus,
                    f.get("emotions"),
                    f.get("n"),
                    f.get("unweighted_accuracy"),
                    f.get("weighted_accuracy"),
                    f.get("per_class_recall"),
                    f.get("confusion"),
                    f.get("expected_calibration_error"),
                    f.get("confident_share"),
                    f.get("confident_accuracy"),
                )


def _listing_udtf(ddl: str, rows, store: ModelStore):
    """A table function without arguments whose rows are ``rows(store)``."""
    from pyspark.sql.functions import udtf

    @udtf(returnType=ddl)
    class Listing:
        def eval(self):
            yield from rows(store)

    return Listing


def make_emotion_model_figures_udtf(store: ModelStore):
    return _listing_udtf(MODEL_FIGURES_DDL, model_figure_rows, store)


def make_emotion_models_udtf(store: ModelStore):
    return _listing_udtf(MODEL_LIST_DDL, model_rows, store)
