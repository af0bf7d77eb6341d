"""A clip's voice profile, a group's voice baseline, and a model's voice head.

``emotion_relative(scores, baseline)`` removes what a source's clips share from the model's
scores.  The same can be done one step earlier, on the sound itself: how a speaker's pitch,
loudness, timbre and tempo move in one clip against that speaker's other clips.  The voice
profile is a clip's statistics over its speech frames of the features the model reads (the
one implementation, :mod:`udfs.features`): per coefficient mean, spread and frame-to-frame
movement; the voiced share; mean and spread of the pitch rows.  A voice baseline is their mean
and spread over a group.  A model's voice head, a linear layer trained (``training.voice_head``)
on profiles standardised over each training speaker's own clips, turns a clip's profile
standardised against its group's baseline into emotion probabilities; ``emotion_relative``'s
four-argument form adds its log-probabilities, weighted, to the scores' log-ratio against
their baseline.  A clip alone has no baseline; the head is only for groups.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs.errors import ArgumentError, ModelError
from udfs.features import DEFAULT_FEATURES, FeatureConfig
from udfs.labels import EMOTIONS

PROFILE_DDL = "array<float>"
VOICE_BASELINE_DDL = "struct<mean:array<double>, spread:array<double>, clips:bigint>"
VOICE_BASELINE_TYPE = pa.struct(
    [
        ("mean", pa.list_(pa.float64())),
        ("spread", pa.list_(pa.float64())),
        ("clips", pa.int64()),
    ]
)
VOICE_HEAD_FILE = "voice_head.json"
#: A coefficient whose absolute value exceeds this in any of c1.. marks a frame as speech: the
#: padding around a short clip's speech is flat at zero there.
SPEECH_LEVEL = 0.5
#: Added to a spread before dividing by it: a statistic constant over a group (a group of one
#: clip, a padded frame count) standardises to 0 rather than to infinity.
SPREAD_FLOOR = 1e-6


def profile_length(config: FeatureConfig = DEFAULT_FEATURES) -> int:
    """Statistics a profile has: three per coefficient, then with the prosody rows the voiced
    share and two per pitch row."""
    return 3 * config.n_mfcc + (1 + 2 * (config.prosody_rows - 1) if config.prosody_rows else 0)


def profiles(x: np.ndarray, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Voice profiles [shape=(clips, profile_length), float32] of feature matrices ``x``
    [shape=(clips, rows, frames)] as ``mfcc`` computes them."""
    n_mfcc = config.n_mfcc
    speech = np.abs(x[:, 1:n_mfcc]).max(axis=1) > SPEECH_LEVEL
    weight = speech / np.maximum(speech.sum(axis=1, keepdims=True), 1)
    cepstra = x[:, :n_mfcc]
    mean = np.einsum("bkt,bt->bk", cepstra, weight)
    spread = np.sqrt(np.einsum("bkt,bt->bk", (cepstra - mean[:, :, None]) ** 2, weight))
    step = np.diff(cepstra, axis=2)
    both = speech[:, 1:] & speech[:, :-1]
    step_weight = both / np.maximum(both.sum(axis=1, keepdims=True), 1)
    movement = np.sqrt(np.einsum("bkt,bt->bk", step**2, step_weight))
    parts = [mean, spread, movement]
    if config.prosody_rows:
        voiced = x[:, n_mfcc] > 0.5
        v_weight = voiced / np.maximum(voiced.sum(axis=1, keepdims=True), 1)
        pitch = x[:, n_mfcc + 1 :]
        p_mean = np.einsum("bkt,bt->bk", pitch, v_weight)
        p_spread = np.sqrt(np.einsum("bkt,bt->bk", (pitch - p_mean[:, :, None]) ** 2, v_weight))
        voiced_share = (voiced & speech).sum(axis=1) / np.maximum(speech.sum(axis=1), 1)
        parts += [voiced_share[:, None], p_mean, p_spread]
    return np.concatenate(parts, axis=1).astype(np.float32)


def standardise(values: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    return (values - mean) / (spread + SPREAD_FLOOR)


def standardise_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row standardised over the rows of its group (population spread), as a row is
    against its group's ``voice_baseline``."""
    out = np.empty(values.shape, dtype=np.float64)
    for group in np.unique(groups):
        rows = groups == group
        out[rows] = standardise(values[rows], values[rows].mean(axis=0), values[rows].std(axis=0))
    return out


@dataclass(frozen=True)
class VoiceHead:
    """Emotion probabilities from profiles standardised against their group.

    ``mean``/``scale`` standardise those over the training rows once more; ``weights`` and
    ``bias`` are the linear layer; ``balancing`` divides the training set's class frequencies
    out (as the network's balanced priors do); ``fusion_weight`` multiplies the head's
    log-probabilities where they are added to the scores' log-ratio against their baseline.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    balancing: np.ndarray
    fusion_weight: float
    features: FeatureConfig

    def probabilities(self, relative_profiles: np.ndarray) -> np.ndarray:
        z = standardise(relative_profiles, self.mean, self.scale) @ self.weights + self.bias
        p = np.exp(z - z.max(axis=1, keepdims=True)) * self.balancing
        return p / p.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict:
        return {
            "labels": list(EMOTIONS),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            "balancing": self.balancing.tolist(),
            "fusion_weight": self.fusion_weight,
            "features": self.features.to_dict(),
        }

    @classmethod
    def from_dict(cls, values: dict, where: str = "voice head") -> VoiceHead:
        try:
            features = FeatureConfig.from_dict(values["features"])
            head = cls(
                mean=np.asarray(values["mean"], dtype=np.float64),
                scale=np.asarray(values["scale"], dtype=np.float64),
                weights=np.asarray(values["weights"], dtype=np.float64),
                bias=np.asarray(values["bias"], dtype=np.float64),
                balancing=np.asarray(values["balancing"], dtype=np.float64),
                fusion_weight=float(values["fusion_weight"]),
                features=features,
            )
            labels = tuple(values["labels"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where} is malformed: {exc!r}") from None
        length, k = profile_length(features), len(EMOTIONS)
        if labels != EMOTIONS or not (
            head.mean.shape == head.scale.shape == (length,)
            and head.weights.shape == (length, k)
            and head.bias.shape == head.balancing.shape == (k,)
        ):
            raise ModelError(
                f"{where} does not fit {length} profile statistics and the eight emotions"
            )
        return head

    def write(self, directory: Path) -> None:
        (Path(directory) / VOICE_HEAD_FILE).write_text(json.dumps(self.to_dict()) + "\n")


def read_voice_head(model_dir: Path, reference: str) -> VoiceHead:
    """The voice head of a model directory; ModelError naming the model when it has none."""
    path = Path(model_dir) / VOICE_HEAD_FILE
    try:
        stamp = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        raise ModelError(
            f"model {reference} has no voice head ({VOICE_HEAD_FILE}): use "
            "emotion_relative(scores, baseline), or a model that has one (emotion_models())"
        ) from None
    return _read_cached(str(path), stamp, reference)


@lru_cache(maxsize=8)
def _read_cached(path: str, stamp: int, reference: str) -> VoiceHead:
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ModelError(f"model {reference}'s {VOICE_HEAD_FILE} is unreadable: {reason}") from None
    return VoiceHead.from_dict(values, f"model {reference}'s {VOICE_HEAD_FILE}")


# --- SQL: voice_profile, voice_baseline ---------------------------------------------------------


def _float_rows(values: pa.Array, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of an ``array<float|double>`` column as ``(n, length)`` float64 and whether each is a
    complete, finite row of that length (others are NULL rows)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n = len(values)
    lengths = pc.fill_null(pc.list_value_length(values), 0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(values).cast(pa.float64()).fill_null(np.nan).to_numpy()
    ends = np.cumsum(lengths)
    out = np.full((n, length), np.nan)
    valid = np.asarray(values.is_valid()) & (lengths == length)
    for i in np.flatnonzero(valid):
        out[i] = flat[ends[i] - length : ends[i]]
    return out, valid & np.isfinite(out).all(axis=1)


def _check_list(
    values: pa.Array, argument: str, expected: str = "voice_profile(...) (array<float>)"
) -> None:
    kind = values.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not (
        pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)
    ):
        raise ArgumentError(f"{argument} must be {expected}, got {kind}")


def voice_baseline(values: pa.Array, config: FeatureConfig = DEFAULT_FEATURES) -> dict | None:
    """Mean and spread of a group's complete profiles; None without one."""
    _check_list(values, "voice_baseline's argument")
    matrix, valid = _float_rows(values, profile_length(config))
    if not valid.any():
        return None
    rows = matrix[valid]
    return {
        "mean": rows.mean(axis=0).tolist(),
        "spread": rows.std(axis=0).tolist(),
        "clips": int(valid.sum()),
    }


def relative_profiles(
    values: pa.Array, baselines: pa.Array, config: FeatureConfig = DEFAULT_FEATURES
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's profile standardised against its row's baseline, and where both are
    complete."""
    _check_list(values, "emotion_relative's third argument (profile)")
    if isinstance(baselines, pa.ChunkedArray):
        baselines = baselines.combine_chunks()
    kind = baselines.type
    names = (
        {kind.field(i).name for i in range(kind.num_fields)} if pa.types.is_struct(kind) else set()
    )
    if not {"mean", "spread"} <= names:
        raise ArgumentError(
            "emotion_relative's fourth argument must be voice_baseline(profile), e.g. OVER "
            f"(PARTITION BY speaker), got {kind}"
        )
    for name in ("mean", "spread"):
        _check_list(
            baselines.field(name),
            "emotion_relative's fourth argument",
            f"voice_baseline(profile), whose {name} is array<double>",
        )
    length = profile_length(config)
    profile, valid = _float_rows(values, length)
    mean, mean_valid = _float_rows(baselines.field("mean"), length)
    spread, spread_valid = _float_rows(baselines.field("spread"), length)
    valid &= mean_valid & spread_valid & np.asarray(baselines.is_valid())
    out = np.where(valid[:, None], standardise(profile, mean, spread), 0.0)
    return out, valid


def _profile_rows(values: pa.Array, roots, config: FeatureConfig, strict: bool) -> list:
    """One profile (float32) per row of audio or ``mfcc`` values; None for a bad row."""
    from udfs.inference import _is_audio
    from udfs.spark_udfs import clip_features_or_none

    if _is_audio(values.type):
        features = [
            clip_features_or_none(v, roots, config, strict=strict) for v in values.to_pylist()
        ]
    else:
        if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
            raise ArgumentError(
                f"voice_profile's argument must be audio or mfcc(audio), got {values.type}"
            )
        matrix, valid = _float_rows(values, int(np.prod(config.shape)))
        features = [matrix[i] if valid[i] else None for i in range(len(values))]
    out = [None] * len(features)
    present = [i for i, f in enumerate(features) if f is not None]
    if present:
        x = np.stack([np.asarray(features[i], dtype=np.float32) for i in present])
        for i, row in zip(present, profiles(x.reshape(len(present), *config.shape), config)):
            out[i] = row
    return out


def make_voice_profile_udf(
    roots, config: FeatureConfig = DEFAULT_FEATURES, store=None, *, strict: bool = False
):
    from pyspark.sql.functions import arrow_udf

    from udfs import model_cache
    from udfs.spark_udfs import float_lists

    roots = tuple(roots)

    @arrow_udf(PROFILE_DDL)
    def voice_profile(audio: pa.Array) -> pa.Array:
        rows = _profile_rows(audio, roots, config, strict)
        model_cache.warm(store)
        return float_lists(rows)

    return voice_profile


def make_voice_baseline_udf(config: FeatureConfig = DEFAULT_FEATURES):
    from pyspark.sql.functions import arrow_udf

    @arrow_udf(VOICE_BASELINE_DDL)
    def voice_baseline_udf(profile: pa.Array) -> pa.Scalar:
        return pa.scalar(voice_baseline(profile, config), type=VOICE_BASELINE_TYPE)

    return voice_baseline_udf
