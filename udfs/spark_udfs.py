"""Spark wrappers of the pure audio functions: they adapt Arrow batches and nothing more.

Every function is an Arrow UDF, so Spark chains them (``emotion_scores(mfcc(content))``)
inside one Python worker without a round trip through the JVM.  Spark does not
short-circuit, so every wrapper turns a bad row into NULL (and ``audio_info`` carries
the reason) instead of raising: one bad clip never fails a query or kills a worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from pyspark.sql.functions import arrow_udf

from udfs import model_cache
from udfs.audio import AUDIO_INFO_DDL, AudioInfo, audio_info, load_audio
from udfs.degrade import degrade_samples, encode_wav, resolve_condition
from udfs.errors import ArgumentError, AudioError
from udfs.features import DEFAULT_FEATURES, FeatureConfig, mfcc_features
from udfs.ravdess import RAVDESS_META_DDL, RavdessMeta, parse_ravdess_name

MFCC_DDL = "array<float>"

_AUDIO_INFO_TYPES = (
    pa.int32(),
    pa.int32(),
    pa.int64(),
    pa.float64(),
    pa.string(),
    pa.string(),
    pa.string(),
)
_RAVDESS_TYPES = (
    pa.string(),
    pa.string(),
    pa.string(),
    pa.string(),
    pa.string(),
    pa.int32(),
    pa.int32(),
    pa.string(),
)


def clip_features(
    source, roots: Sequence[str], config: FeatureConfig = DEFAULT_FEATURES
) -> np.ndarray:
    """Flattened MFCC matrix of one ``audio`` value (path or bytes); raises AudioError."""
    y, sample_rate = load_audio(source, roots)
    return mfcc_features(y, sample_rate, config=config).ravel()


def describe_source(source) -> str:
    if isinstance(source, str):
        return repr(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"audio bytes ({len(source)} bytes)"
    return "NULL audio" if source is None else type(source).__name__


def clip_features_or_none(
    source, roots: Sequence[str], config: FeatureConfig = DEFAULT_FEATURES, *, strict: bool = False
):
    """Features of a row, or None for a bad row; in strict mode a bad row fails the query, naming
    it."""
    try:
        return clip_features(source, roots, config)
    except AudioError as exc:
        if strict:
            raise AudioError(f"strict mode: cannot use {describe_source(source)}: {exc}") from None
        return None


def struct_array(
    records: list,
    names: Sequence[str],
    types: Sequence[pa.DataType],
    *,
    nulls: list[bool] | None = None,
) -> pa.StructArray:
    """Arrow struct column from row tuples; ``nulls`` marks rows that are NULL as a whole."""
    columns = [
        pa.array([None if r is None else r[i] for r in records], type=t)
        for i, t in enumerate(types)
    ]
    mask = None if nulls is None else pa.array(nulls, type=pa.bool_())
    return pa.StructArray.from_arrays(columns, names=list(names), mask=mask)


def float_lists(rows: list[np.ndarray | None]) -> pa.ListArray:
    """Arrow ``array<float>`` column from 1-D float32 arrays (None for NULL), without per-value
    Python objects."""
    lengths = np.array([0 if r is None else len(r) for r in rows], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)]).astype(np.int32)
    present = [r for r in rows if r is not None]
    values = np.concatenate(present).astype(np.float32) if present else np.zeros(0, np.float32)
    mask = pa.array([r is None for r in rows], type=pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), mask=mask)


def make_audio_info_udf(roots: Sequence[str], store=None):
    roots = tuple(roots)

    @arrow_udf(AUDIO_INFO_DDL)
    def audio_info_udf(audio: pa.Array) -> pa.Array:
        records = [audio_info(value, roots) for value in audio.to_pylist()]
        model_cache.warm(store)
        return struct_array(records, AudioInfo._fields, _AUDIO_INFO_TYPES)

    return audio_info_udf


def make_mfcc_udf(
    roots: Sequence[str],
    config: FeatureConfig = DEFAULT_FEATURES,
    store=None,
    *,
    strict: bool = False,
):
    roots = tuple(roots)

    @arrow_udf(MFCC_DDL)
    def mfcc_udf(audio: pa.Array) -> pa.Array:
        features = [
            clip_features_or_none(value, roots, config, strict=strict)
            for value in audio.to_pylist()
        ]
        model_cache.warm(store)
        return float_lists(features)

    return mfcc_udf


def degraded_clip(source, roots: Sequence[str], condition: str, seed: int, background=None):
    """WAV bytes of one ``audio`` value under ``condition``; raises AudioError for a bad row."""
    y, sample_rate = load_audio(source, roots)
    mono = y.mean(axis=0)
    crowd, crowd_rate = None, None
    if background is not None:
        other, crowd_rate = load_audio(background, roots)
        crowd = other.mean(axis=0)
    degraded = degrade_samples(
        mono, sample_rate, condition, seed=seed, background=crowd, background_rate=crowd_rate
    )
    return encode_wav(*degraded)


def _seed(value) -> int:
    """``degrade``'s seed argument (NULL: 0); a bad one is a bad argument, failing the query."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise ArgumentError(
            f"degrade's seed must be a whole number, got {str(value)[:40]!r}"
        ) from None


def make_degrade_udf(roots: Sequence[str], store=None):
    roots = tuple(roots)

    @arrow_udf("binary")
    def degrade(audio: pa.Array, condition: pa.Array, *rest: pa.Array) -> pa.Array:
        values, conditions = audio.to_pylist(), condition.to_pylist()
        seeds = rest[0].to_pylist() if rest else [0] * len(values)
        backgrounds = rest[1].to_pylist() if len(rest) > 1 else [None] * len(values)
        # A bad condition is a bad argument, not a bad row: the query fails naming it (checked
        # once per distinct condition; its bounds do not depend on the seed).
        for text in set(conditions):
            resolve_condition(text, 0)
        seeds = [_seed(seed) for seed in seeds]
        out = []
        for value, text, seed, background in zip(values, conditions, seeds, backgrounds):
            try:
                out.append(degraded_clip(value, roots, text, seed, background))
            except AudioError:
                out.append(None)  # audio_info(audio).error says why
        model_cache.warm(store)
        return pa.array(out, type=pa.binary())

    return degrade


def make_ravdess_meta_udf(store=None):
    @arrow_udf(RAVDESS_META_DDL)
    def ravdess_meta(path: pa.Array) -> pa.Array:
        metas = [parse_ravdess_name(value) for value in path.to_pylist()]
        model_cache.warm(store)
        return struct_array(
            metas, RavdessMeta._fields, _RAVDESS_TYPES, nulls=[m is None for m in metas]
        )

    return ravdess_meta
