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
from udfs.features import DEFAULT_FEATURES
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


def log_ratios(scores, baseline, voice=None, weight=0.0) -> np.ndarray:
    """``log(scores / baseline)``, plus ``weight`` times the voice head's log-probabilities
    ``voice``: what ``emotion_relative`` takes the largest of (the trainer's figures too)."""
    ratio = np.log(np.maximum(scores, 1e-300)) - np.log(np.maximum(baseline, 1e-12))
    if voice is not None:
        ratio = ratio + weight * np.log(np.maximum(voice, 1e-300))
    return ratio


def tied(ratio: np.ndarray) -> np.ndarray:
    """Rows whose two largest ratios are equal: nothing stands out."""
    top = np.sort(ratio, axis=1)
    return top[:, -1] - top[:, -2] <= 1e-9 * np.maximum(np.abs(top[:, -1]), 1.0)


def relative(scores: pa.Array, baselines: pa.Array, voice=None) -> pa.Array:
    """Per row, the emotion whose score is largest relative to the row's baseline; NULL where
    either is NULL or the largest ratio is shared.

    ``voice``: ``(probabilities, valid, weight)`` of a voice head on the rows' profiles against
    their group (:mod:`udfs.voice`); its log-probabilities times ``weight`` are added to the
    log-ratios, and a row without a complete profile and voice baseline is NULL.
    """
    matrix, valid = _matrix(scores, "emotion_relative's first argument (scores)")
    base, base_valid = _matrix(baselines, "emotion_relative's second argument (baseline)")
    valid &= base_valid
    # Probabilities are positive; a baseline of 0 (a hand-made struct) must not divide by zero.
    ratio = np.where(valid[:, None], log_ratios(matrix, base), 0.0)
    # Nothing stands out when the two largest ratios are equal: a clip that is its group's whole
    # baseline (a group of one) is NULL rather than the first emotion of a tie, with a voice head
    # too (its profile is then its baseline's).
    ok = valid & ~tied(ratio)
    if voice is not None:
        probabilities, voice_valid, weight = voice
        ratio = np.where(
            voice_valid[:, None], log_ratios(matrix, base, probabilities, weight), ratio
        )
        ok &= voice_valid & ~tied(ratio)
    decided = np.argmax(ratio, axis=1)
    return pa.array(
        [EMOTIONS[k] if good else None for k, good in zip(decided, ok)], type=pa.string()
    )


def make_emotion_baseline_udf():
    @arrow_udf(EMOTION_SCORES_DDL)
    def emotion_baseline(scores: pa.Array) -> pa.Scalar:
        return pa.scalar(baseline(scores), type=SCORES_TYPE)

    return emotion_baseline


def voice_probabilities(store, profiles, voice_baselines, models, n: int, config):
    """The voice head's probabilities for each row (of the row's model: the active one unless
    named), and where they exist."""
    from udfs.inference import models_per_row
    from udfs.voice import read_voice_head, relative_profiles

    standardised, valid = relative_profiles(profiles, voice_baselines, config)
    references, infos = models_per_row(store, () if models is None else (models,), n)
    probabilities = np.full((n, len(EMOTIONS)), 1.0 / len(EMOTIONS))
    weights = np.zeros(n)
    for reference, info in infos.items():
        head = read_voice_head(info.path, f"{info.name}/{info.version}")
        if head.features != config:
            raise ArgumentError(
                f"model {info.name}/{info.version}'s voice head reads other features than "
                "voice_profile computes on this server"
            )
        rows = np.array([r == reference for r in references])
        probabilities[rows] = head.probabilities(standardised[rows])
        weights[rows] = head.fusion_weight
    return probabilities, valid, weights[:, None]


def make_emotion_relative_udf(store=None, config=None):
    @arrow_udf("string")
    def emotion_relative(scores: pa.Array, baselines: pa.Array, *voice: pa.Array) -> pa.Array:
        if not voice:
            return relative(scores, baselines)
        if len(voice) not in (2, 3) or store is None:
            raise ArgumentError(
                "emotion_relative takes (scores, baseline) or (scores, baseline, profile, "
                "voice_baseline [, model])"
            )
        model = voice[2] if len(voice) > 2 else None
        fused = voice_probabilities(
            store, voice[0], voice[1], model, len(scores), config or DEFAULT_FEATURES
        )
        return relative(scores, baselines, fused)

    return emotion_relative
