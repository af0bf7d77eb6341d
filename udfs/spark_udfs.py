"""Spark wrappers of the pure audio functions: they adapt Arrow batches and nothing more.

Spark does not short-circuit, so every wrapper turns a bad row into NULL (and
``audio_info`` carries the reason) instead of raising: one bad clip never fails
a query or kills a Python worker.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from pyspark.sql.functions import pandas_udf, udf

from udfs.audio import AUDIO_INFO_DDL, AudioInfo, audio_info, decode_audio, read_audio_source
from udfs.errors import AudioError
from udfs.features import DEFAULT_FEATURES, FeatureConfig, mfcc_features
from udfs.ravdess import RAVDESS_META_DDL, parse_ravdess_name

MFCC_DDL = "array<float>"


def clip_features(source, roots: Sequence[str], config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Flattened MFCC matrix of one ``audio`` value (path or bytes); raises AudioError."""
    y, sample_rate = decode_audio(read_audio_source(source, roots))
    return mfcc_features(y, sample_rate, config=config).ravel()


def clip_features_or_none(source, roots: Sequence[str], config: FeatureConfig = DEFAULT_FEATURES):
    try:
        return clip_features(source, roots, config)
    except AudioError:
        return None


def make_audio_info_udf(roots: Sequence[str]):
    roots = tuple(roots)

    @pandas_udf(AUDIO_INFO_DDL)
    def audio_info_udf(audio: pd.Series) -> pd.DataFrame:
        rows = [audio_info(value, roots) for value in audio]
        frame = pd.DataFrame.from_records(rows, columns=AudioInfo._fields)
        return frame.astype(
            {"sample_rate": "Int32", "channels": "Int32", "frames": "Int64", "duration_s": "Float64"}
        )

    return audio_info_udf


def make_mfcc_udf(roots: Sequence[str], config: FeatureConfig = DEFAULT_FEATURES):
    roots = tuple(roots)

    @pandas_udf(MFCC_DDL)
    def mfcc_udf(audio: pd.Series) -> pd.Series:
        return pd.Series([clip_features_or_none(value, roots, config) for value in audio], dtype=object)

    return mfcc_udf


def make_ravdess_meta_udf():
    # A row-wise Arrow UDF rather than a pandas one: only it can return a NULL struct.
    def ravdess_meta(path):
        meta = parse_ravdess_name(path)
        return None if meta is None else tuple(meta)

    return udf(ravdess_meta, RAVDESS_META_DDL, useArrow=True)
