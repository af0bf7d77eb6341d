"""Emotion against a group's own baseline: ``emotion_baseline`` and ``emotion_relative``.

A model is biased the same way on every clip of a voice, language or microphone it never heard:
a reserved speaker's angry clips sound neutral to it, a phone line's clips sad.  Over a group of
clips that share such a source (one speaker's calls, one agent's line, one table of recordings)
the mean of their ``emotion_scores`` estimates that bias; dividing each clip's scores by it asks
which emotion stands out against the group's usual sound.  Across corpora the model never heard
this is worth far more than any recipe change measured (docs/model-history.md), on one condition:
the group's clips do not all carry the same emotion (then what stands out is noise).

``emotion_baseline(scores)`` is an aggregate (``GROUP BY``, or a window ``OVER (PARTITION BY
...)``): the mean of the group's scores, NULL rows left out.  ``emotion_relative(scores,
baseline)`` is the emotion with the largest ``scores / baseline``, NULL when two or more share
the largest ratio (a clip that is its group's whole baseline has every ratio 1).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.functions import arrow_udf

from udfs.errors import ArgumentError
from udfs.labels import EMOTION_SCORES_DDL, EMOTIONS

#: The Arrow type of an ``emotion_scores`` struct.
SCORES_TYPE = pa.struct([(name, pa.float64()) for name in EMOTIONS])


def _matrix(scores: pa.Array, argument: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``scores`` (an ``emotion_scores`` struct array) as ``(n, 8)`` float64 and whether
    each row is complete; ArgumentError unless it is such a struct."""
    if isinstance(scores, pa.ChunkedArray):
        scores = scores.combine_chunks()
    kind = scores.type
    names = [kind.field(i).name for i in range(kind.num_fields)] if pa.types.is_struct(kind) else []
    if set(EMOTIONS) - set(names) or not all(
        pa.types.is_floating(kind.field(name).type) or pa.types.is_integer(kind.field(name).type)
        for name in EMOTIONS
    ):
        raise ArgumentError(
            f"{argument} must be emotion_scores(...) (a struct of the eight emotions' "
            f"probabilities), got {kind}"
        )
    columns = [pc.cast(scores.field(name), pa.float64()) for name in EMOTIONS]
    valid = np.asarray(scores.is_valid())
    for column in columns:
        valid &= np.asarray(column.is_valid())
    matrix = np.column_stack([column.fill_null(np.nan).to_numpy() for column in columns])
    return matrix, valid & np.isfinite(matrix).all(axis=1)


def baseline(scores: pa.Array) -> dict | None:
    """The mean of the complete rows of ``scores``, by emotion; None without one."""
    matrix, valid = _matrix(scores, "emotion_baseline's argument")
    if not valid.any():
        return None
    mean = matrix[valid].mean(axis=0)
    return {name: float(value) for name, value in zip(EMOTIONS, mean)}


def relative(scores: pa.Array, baselines: pa.Array) -> pa.Array:
    """Per row, the emotion whose score is largest relative to the row's baseline; NULL where
    either is NULL or the largest ratio is shared."""
    matrix, valid = _matrix(scores, "emotion_relative's first argument (scores)")
    base, base_valid = _matrix(baselines, "emotion_relative's second argument (baseline)")
    # Probabilities are positive; a baseline of 0 (a hand-made struct) must not divide by zero.
    ratio = np.where((valid & base_valid)[:, None], matrix / np.maximum(base, 1e-12), 0.0)
    top = np.sort(ratio, axis=1)
    # Nothing stands out when the two largest ratios are equal: a clip that is its group's whole
    # baseline (a group of one) is NULL rather than the first emotion of a tie.
    ok = valid & base_valid & (top[:, -1] - top[:, -2] > 1e-9 * top[:, -1])
    decided = np.argmax(ratio, axis=1)
    return pa.array(
        [EMOTIONS[k] if good else None for k, good in zip(decided, ok)], type=pa.string()
    )


def make_emotion_baseline_udf():
    @arrow_udf(EMOTION_SCORES_DDL)
    def emotion_baseline(scores: pa.Array) -> pa.Scalar:
        return pa.scalar(baseline(scores), type=SCORES_TYPE)

    return emotion_baseline


def make_emotion_relative_udf():
    @arrow_udf("string")
    def emotion_relative(scores: pa.Array, baselines: pa.Array) -> pa.Array:
        return relative(scores, baselines)

    return emotion_relative
