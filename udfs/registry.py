"""The SQL functions Emoticana registers: name -> UDF factory, return type and documentation.

The server registers exactly these, the README's function reference lists
them, and a test calls every one over JDBC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from udfs.audio import AUDIO_INFO_DDL
from udfs.features import FeatureConfig
from udfs.ravdess import RAVDESS_META_DDL
from udfs.spark_udfs import MFCC_DDL, make_audio_info_udf, make_mfcc_udf, make_ravdess_meta_udf


@dataclass(frozen=True)
class UdfContext:
    """What a UDF factory may close over; pickled into the UDF, so it reaches every executor."""

    audio_roots: tuple[str, ...]
    features: FeatureConfig


@dataclass(frozen=True)
class SqlFunction:
    name: str
    signature: str
    return_ddl: str
    summary: str
    factory: Callable[[UdfContext], object]


SQL_FUNCTIONS: tuple[SqlFunction, ...] = (
    SqlFunction(
        name="audio_info",
        signature="audio_info(audio)",
        return_ddl=AUDIO_INFO_DDL,
        summary="Header facts of a clip (path or bytes); error says why a row could not be read.",
        factory=lambda ctx: make_audio_info_udf(ctx.audio_roots),
    ),
    SqlFunction(
        name="mfcc",
        signature="mfcc(audio)",
        return_ddl=MFCC_DDL,
        summary="The model's MFCC input, flattened row-major from (n_mfcc, n_frames); NULL for a bad row.",
        factory=lambda ctx: make_mfcc_udf(ctx.audio_roots, ctx.features),
    ),
    SqlFunction(
        name="ravdess_meta",
        signature="ravdess_meta(path)",
        return_ddl=RAVDESS_META_DDL,
        summary="Fields of a RAVDESS file name; NULL when the name does not follow the scheme.",
        factory=lambda ctx: make_ravdess_meta_udf(),
    ),
)


def function_names() -> Sequence[str]:
    return [fn.name for fn in SQL_FUNCTIONS]
