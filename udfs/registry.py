"""The SQL functions Emoticana registers: name -> UDF factory, return type and documentation.

The server registers exactly these, the README's function reference lists
them, and a test calls every one over JDBC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from udfs.audio import AUDIO_INFO_DDL
from udfs.features import FeatureConfig
from udfs.inference import MODEL_FIGURES_DDL, MODEL_LIST_DDL
from udfs.labels import EMOTION_SCORES_DDL
from udfs.model_store import DEFAULT_MODEL
from udfs.ravdess import RAVDESS_META_DDL
from udfs.relative import make_emotion_baseline_udf, make_emotion_relative_udf
from udfs.segments import EMOTION_SEGMENTS_DDL
from udfs.spark_udfs import (
    MFCC_DDL,
    make_audio_info_udf,
    make_degrade_udf,
    make_mfcc_udf,
    make_ravdess_meta_udf,
)
from udfs.voice import (
    PROFILE_DDL,
    VOICE_BASELINE_DDL,
    make_voice_baseline_udf,
    make_voice_profile_udf,
)


@dataclass(frozen=True)
class UdfContext:
    """What a UDF factory may close over; pickled into the UDF, so it reaches every executor."""

    audio_roots: tuple[str, ...]
    features: FeatureConfig
    model_roots: tuple[str, ...] = ()
    #: Fail the query on a bad row (naming it) instead of returning NULL.
    strict: bool = False

    @property
    def model_store(self):
        """None when no model roots are configured (audio functions only)."""
        from udfs.model_store import ModelStore

        return ModelStore(self.model_roots, self.features) if self.model_roots else None


@dataclass(frozen=True)
class SqlFunction:
    name: str
    signature: str
    return_ddl: str
    summary: str
    factory: Callable[[UdfContext], object]
    kind: str = "scalar"  # "table": a table function used in FROM; "aggregate": GROUP BY, OVER
    #: Arguments of a call that works on any server, ``{clip}`` standing for a quoted clip path.
    example_args: str = "{clip}"
    #: A typical query and what it returns, for ``DESCRIBE FUNCTION EXTENDED``.
    example: str = ""
    example_result: str = ""

    @property
    def argument_names(self) -> list[str]:
        inside = self.signature[self.signature.index("(") + 1 : self.signature.rindex(")")]
        return [name for name in re.findall(r"\w+", inside) if name != "or"]

    @property
    def argument_counts(self) -> list[int]:
        """The numbers of arguments a call may give: ``f(a, b [, c [, d]])`` takes 2, 3 or 4."""
        inside = self.signature[self.signature.index("(") + 1 : self.signature.rindex(")")]
        counts, total = [], 0
        for group in inside.split("["):
            total += len(re.findall(r"\w+(?: or \w+)*", group))  # "mfccs or audio" is one
            counts.append(total)
        return sorted(set(counts))

    @property
    def usage(self) -> str:
        """``DESCRIBE FUNCTION``'s line: the signature, its return type and what it does."""
        return f"{self.signature} - returns {self.return_ddl}. {self.summary}"

    @property
    def arguments_doc(self) -> str:
        """The arguments in Spark's ``ExpressionInfo`` layout (empty when there are none)."""
        if not self.argument_names:
            return ""
        lines = "".join(f"      * {name} - {ARGUMENTS[name]}\n" for name in self.argument_names)
        return f"\n    Arguments:\n{lines}  "

    @property
    def examples_doc(self) -> str:
        """The example in Spark's ``ExpressionInfo`` layout."""
        return f"\n    Examples:\n      > {self.example};\n       {self.example_result}\n  "


#: What each argument name of the signatures takes.
ARGUMENTS = {
    "audio": "a path string or file: URI inside EMOTICANA_AUDIO_ROOTS, or the audio bytes (the "
    "content column of a binaryFile table)",
    "path": "a clip's path or file name; only the name is read",
    "mfccs": "an mfcc(audio) value (array<float>)",
    "model": "'name/version', or 'name' for its newest version; default: the active model",
    "condition": "steps joined with '+': telephone, noise:SNR, babble:SNR, reverb:T60, "
    "codec:NAME, gain:DB, crop:SECONDS; a value lo..hi is drawn from the range",
    "seed": "an integer seeding the drawn values, noise and rooms (default 0)",
    "background": "other speech (path or bytes) that babble mixes in; default: a synthetic crowd",
    "scores": "an emotion_scores(...) value (struct of the eight emotions' probabilities)",
    "baseline": "the group's emotion_baseline(scores), e.g. OVER (PARTITION BY speaker)",
    "profile": "a voice_profile(...) value (array<float>)",
    "voice_baseline": "the same group's voice_baseline(profile)",
}


SQL_FUNCTIONS: tuple[SqlFunction, ...] = (
    SqlFunction(
        name="audio_info",
        signature="audio_info(audio)",
        return_ddl=AUDIO_INFO_DDL,
        summary="Header facts of a clip (path or bytes); error says why a row could not be read.",
        factory=lambda ctx: make_audio_info_udf(ctx.audio_roots, ctx.model_store),
        example="SELECT audio_info('/data/calls/a.wav').duration_s",
        example_result="3.2",
    ),
    SqlFunction(
        name="mfcc",
        signature="mfcc(audio)",
        return_ddl=MFCC_DDL,
        summary="The model's input, flattened row-major from (rows, n_frames): the MFCCs, then the "
        "prosody rows (voiced, relative log2 F0, log2 F0/200 Hz); NULL for a bad row.",
        factory=lambda ctx: make_mfcc_udf(
            ctx.audio_roots, ctx.features, ctx.model_store, strict=ctx.strict
        ),
        example="SELECT size(mfcc(content)) FROM clips",
        example_result="12943",
    ),
    SqlFunction(
        name="degrade",
        signature="degrade(audio, condition [, seed [, background]])",
        return_ddl="binary",
        summary="The clip as recorded under a condition (WAV bytes): 'telephone', "
        "'noise:SNR', 'babble:SNR', 'reverb:T60', 'codec:NAME', 'gain:DB', 'crop:SECONDS', "
        "joined with '+'; 'lo..hi' draws from a range with the seed. NULL for a bad row.",
        factory=lambda ctx: make_degrade_udf(ctx.audio_roots, ctx.model_store),
        example_args="{clip}, 'telephone+noise:10', 7",
        example="SELECT emotion(degrade(content, 'telephone+noise:10', 7)) FROM clips",
        example_result="sad",
    ),
    SqlFunction(
        name="ravdess_meta",
        signature="ravdess_meta(path)",
        return_ddl=RAVDESS_META_DDL,
        summary="Fields of a RAVDESS file name; NULL when the name does not follow the scheme.",
        factory=lambda ctx: make_ravdess_meta_udf(ctx.model_store),
        example="SELECT ravdess_meta('03-01-05-02-01-02-12.wav').emotion",
        example_result="angry",
    ),
    SqlFunction(
        name="emotion_scores",
        signature="emotion_scores(mfccs or audio [, model])",
        return_ddl=EMOTION_SCORES_DDL,
        summary="Probability of each emotion for an mfcc(...) value (one window), or for a clip "
        "or whole recording (path or bytes: a long one averaged over its speech segments, "
        "weighted by duration); they sum to 1. NULL in, NULL out.",
        factory=lambda ctx: _inference().make_emotion_scores_udf(
            ctx.model_store, ctx.audio_roots, strict=ctx.strict
        ),
        example_args="mfcc({clip})",
        example="SELECT emotion_scores(mfcc(content)).angry FROM clips",
        example_result="0.8126",
    ),
    SqlFunction(
        name="emotion",
        signature="emotion(audio [, model])",
        return_ddl="string",
        summary="The most likely emotion of a clip or whole recording (path or bytes); NULL for "
        "a bad row.",
        factory=lambda ctx: _inference().make_emotion_udf(
            ctx.model_store, ctx.audio_roots, strict=ctx.strict
        ),
        example=f"SELECT emotion(content, '{DEFAULT_MODEL}') FROM clips",
        example_result="angry",
    ),
    SqlFunction(
        name="emotion_baseline",
        signature="emotion_baseline(scores)",
        return_ddl=EMOTION_SCORES_DDL,
        summary="Aggregate (GROUP BY, or a window OVER (PARTITION BY ...)): the mean of a group's "
        "emotion_scores, NULL rows left out; the baseline of emotion_relative.",
        factory=lambda ctx: make_emotion_baseline_udf(),
        kind="aggregate",
        example_args="emotion_scores(mfcc({clip}))",
        example="SELECT speaker, emotion_baseline(emotion_scores(content)).angry FROM calls "
        "GROUP BY speaker",
        example_result="agent7  0.2113",
    ),
    SqlFunction(
        name="emotion_relative",
        signature="emotion_relative(scores, baseline [, profile, voice_baseline [, model]])",
        return_ddl="string",
        summary="The emotion that stands out in a clip against its group's baseline (largest "
        "scores / baseline): a speaker's clips judged against that speaker's usual sound; with "
        "the group's voice profiles, the model's voice head weighs in how the clip sounds "
        "against the group. NULL if any is NULL or none stands out (a group of one clip).",
        factory=lambda ctx: make_emotion_relative_udf(ctx.model_store, ctx.features),
        # Against the same clip on a phone line (against itself nothing stands out: NULL).
        example_args="emotion_scores({clip}), emotion_scores(degrade({clip}, 'telephone', 0))",
        example="SELECT path, emotion_relative(s, emotion_baseline(s) OVER w, v, "
        "voice_baseline(v) OVER w) FROM (SELECT path, speaker, emotion_scores(content) AS s, "
        "voice_profile(content) AS v FROM calls) WINDOW w AS (PARTITION BY speaker)",
        example_result="file:/data/calls/a.wav  angry",
    ),
    SqlFunction(
        name="voice_profile",
        signature="voice_profile(mfccs or audio)",
        return_ddl=PROFILE_DDL,
        summary="How a clip sounds, as statistics over its speech of the features the model "
        "reads (the window mfcc(audio) computes): per coefficient mean, spread and movement, "
        "voiced share, pitch. For voice_baseline and emotion_relative; NULL for a bad row.",
        factory=lambda ctx: make_voice_profile_udf(
            ctx.audio_roots, ctx.features, ctx.model_store, strict=ctx.strict
        ),
        example="SELECT size(voice_profile(content)) FROM clips",
        example_result="125",
    ),
    SqlFunction(
        name="voice_baseline",
        signature="voice_baseline(profile)",
        return_ddl=VOICE_BASELINE_DDL,
        summary="Aggregate (GROUP BY, or a window OVER (PARTITION BY ...)): mean and spread of a "
        "group's voice profiles and how many clips they are of, NULL rows left out; the "
        "voice_baseline of emotion_relative.",
        factory=lambda ctx: make_voice_baseline_udf(ctx.features),
        kind="aggregate",
        example_args="voice_profile({clip})",
        example="SELECT speaker, voice_baseline(voice_profile(content)).clips FROM calls "
        "GROUP BY speaker",
        example_result="agent7  41",
    ),
    SqlFunction(
        name="emotion_segments",
        signature="emotion_segments(audio [, model])",
        return_ddl=f"table<{EMOTION_SEGMENTS_DDL}>",
        summary="Table function, per row with LATERAL: one row per stretch of speech of a "
        "recording of any length (start_s, end_s, emotion, confidence, one score per emotion); "
        "none for silence; a bad row gives one row with NULLs and the reason in error.",
        factory=lambda ctx: _inference().make_emotion_segments_udtf(
            ctx.model_store, ctx.audio_roots, strict=ctx.strict
        ),
        kind="table",
        example="SELECT c.path, s.start_s, s.emotion FROM calls c, "
        "LATERAL emotion_segments(c.path) s",
        example_result="file:/data/calls/a.wav  0.0  neutral",
    ),
    SqlFunction(
        name="activate_model",
        signature="activate_model(model)",
        return_ddl="string",
        summary="Make 'name/version' the active model for every session from the next query on; "
        "fails on a mismatched model.",
        factory=lambda ctx: _inference().make_activate_model_udf(ctx.model_store),
        example_args=f"'{DEFAULT_MODEL}'",  # the one shipped model that can be active
        example=f"SELECT activate_model('{DEFAULT_MODEL}')",
        example_result=DEFAULT_MODEL,
    ),
    SqlFunction(
        name="emotion_models",
        signature="emotion_models()",
        return_ddl=f"table<{MODEL_LIST_DDL}>",
        summary="Table function: every model version on disk with its metrics, training view, "
        "creation time and whether it is active.",
        factory=lambda ctx: _inference().make_emotion_models_udtf(ctx.model_store),
        kind="table",
        example_args="",
        example="SELECT name, version, active FROM emotion_models()",
        example_result="emoticana  9  true",
    ),
    SqlFunction(
        name="emotion_model_figures",
        signature="emotion_model_figures()",
        return_ddl=f"table<{MODEL_FIGURES_DDL}>",
        summary="Table function: each model's cross-validation figures per corpus, for corpora "
        "left out and for unseen speakers: unweighted accuracy over the corpus's own emotions, "
        "recall per emotion, confusion matrix and calibration of its answers.",
        factory=lambda ctx: _inference().make_emotion_model_figures_udtf(ctx.model_store),
        kind="table",
        example_args="",
        example="SELECT name, version, evaluation, corpus, unweighted_accuracy "
        "FROM emotion_model_figures()",
        example_result="emoticana  9  corpus left out  emodb  0.504",
    ),
)


def _inference():
    # Imported lazily: it needs the model store, which the audio-only functions do not.
    from udfs import inference

    return inference
