"""The voice head: trained beside the network on the same features table, and its held-out
figures against each speaker's baseline.

The head (:class:`udfs.voice.VoiceHead`) is one softmax layer on voice profiles standardised
over the clips of their own speaker and recording condition, trained with the network's
partial-label loss (a clip teaches only about its corpus's emotions) and balanced priors.  It
is only ever used together with the model's scores against the same group's baseline, so its
held-out figures are of that combination, on the same folds as the network's: every test clip
judged by a fold network and a fold head that never heard its speaker (or corpus), its scores
(with the model's temperature, as ``emotion_scores`` gives them) divided by its speaker's mean
scores, with and without the head's weighted log-probabilities (what
``emotion_relative(s, emotion_baseline(s) OVER w[, v, voice_baseline(v) OVER w])`` answers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from udfs.features import DEFAULT_FEATURES
from udfs.labels import EMOTIONS
from udfs.voice import VoiceHead, profiles, standardise, standardise_within

#: Epochs, batch and learning rate of a head's one layer (Adam with the network's schedule); the
#: encoder head's too.
EPOCHS = 200
BATCH_SIZE = 64
LEARNING_RATE = 1e-2
#: Weight of the head's log-probabilities against the log-ratio of the network's scores to
#: their baseline, for scores without a temperature; a calibrated model's scores are flatter by
#: its temperature, so the head's weight is divided by it too.  The calibration's distance term
#: flattens the scores of clips far from the training speech further, which the weight does not
#: follow: on those the voice head counts for more.
FUSION_WEIGHT = 0.5
#: What the figures of the two grouped answers are kept under in a cross-validation summary.
AGAINST_SPEAKER = "by_corpus_against_speaker"
AGAINST_SPEAKER_AND_VOICE = "by_corpus_against_speaker_and_voice"


@dataclass(frozen=True)
class ProfileSet:
    """Every usable row of a features table as voice profiles, with what the folds split on."""

    profiles: np.ndarray
    labels: np.ndarray  # class indices
    speakers: np.ndarray
    corpora: np.ndarray
    conditions: np.ndarray
    digests: np.ndarray

    @property
    def groups(self) -> np.ndarray:
        """A speaker under one recording condition: what a profile is standardised over."""
        return np.char.add(np.char.add(self.speakers.astype(str), "/"), self.conditions.astype(str))


def feature_rows(spark, location: str):
    """The rows of the features table at ``location`` that have features, as an RDD of
    ``(features, label, speaker, corpus, condition, digest)`` (computed next to the data)."""
    from pyspark.sql import functions as F

    return (
        spark.read.parquet(location)
        .where(F.col("features").isNotNull())
        .select("features", "label", "speaker", "corpus", "condition", "digest")
        .rdd
    )


def feature_matrices(rows) -> np.ndarray:
    """The feature matrices of rows whose first field is the features (:func:`feature_rows`'
    rows, or any selection of the features table that starts with them), stacked ``(n,
    *DEFAULT_FEATURES.shape)``; no rows give ``(0, *shape)``."""
    shape = DEFAULT_FEATURES.shape
    if not rows:
        return np.zeros((0, *shape), np.float32)
    return np.stack([np.asarray(r[0], dtype=np.float32).reshape(shape) for r in rows])


def load_profiles(spark, location: str, compute_rows=profiles) -> ProfileSet:
    """The voice profiles of a features table's rows (or what ``compute_rows`` makes of a stack
    of feature matrices, e.g. the speech encoder's states), computed by Spark next to the data."""

    def compute(rows):
        rows = list(rows)
        if not rows:
            return
        for r, p in zip(rows, compute_rows(feature_matrices(rows))):
            yield (p.tolist(), *r[1:])

    return profile_set(feature_rows(spark, location).mapPartitions(compute).collect())


def profile_set(found) -> ProfileSet:
    """A :class:`ProfileSet` of rows ``(profile, label, speaker, corpus, condition, digest)``."""
    return ProfileSet(
        profiles=np.array([r[0] for r in found], dtype=np.float32).reshape(len(found), -1),
        labels=np.array([EMOTIONS.index(r[1]) for r in found], dtype=np.int64),
        speakers=np.array([r[2] for r in found], dtype=object),
        corpora=np.array([r[3] for r in found], dtype=object),
        conditions=np.array([r[4] for r in found], dtype=object),
        digests=np.array([r[5] for r in found], dtype=object),
    )


def fit_voice_head(
    data: ProfileSet,
    rows: np.ndarray,
    corpora: dict[str, list[str]],
    *,
    temperature: float = 1.0,
    epochs: int = EPOCHS,
    seed: int = 0,
) -> VoiceHead:
    """A head trained on ``rows`` (a boolean mask) of ``data``, each standardised within its
    speaker and condition among those rows."""
    from training.network import balancing_factors
    from training.schedule import fit_softmax_layer
    from training.trainer import corpus_mask

    x = standardise_within(data.profiles[rows].astype(np.float64), data.groups[rows])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    labels = data.labels[rows]
    masks = np.array([corpus_mask(corpora[c]) for c in data.corpora[rows]])
    layer = fit_softmax_layer(
        standardise(x, mean, scale),
        labels,
        masks,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        seed=seed,
    )
    weights, bias = layer.get_weights()
    return VoiceHead(
        mean=mean,
        scale=scale,
        weights=weights.astype(np.float64),
        bias=bias.astype(np.float64),
        balancing=np.asarray(
            balancing_factors(np.bincount(labels, minlength=len(EMOTIONS))), dtype=np.float64
        ),
        fusion_weight=FUSION_WEIGHT / temperature,
        features=DEFAULT_FEATURES,
    )


def grouped_logits(
    scores: np.ndarray, groups: np.ndarray, voice: np.ndarray | None = None, weight: float = 0.0
) -> np.ndarray:
    """Each row's log-ratios of its scores to its group's mean scores (plus ``weight`` times the
    head's log-probabilities ``voice``), whose arg-max is ``emotion_relative``'s answer."""
    from udfs.relative import log_ratios

    logits = np.empty(scores.shape)
    for group in np.unique(groups):
        rows = groups == group
        logits[rows] = log_ratios(
            scores[rows],
            scores[rows].mean(axis=0),
            None if voice is None else voice[rows],
            weight,
        )
    return logits


def grouped_answers(
    scores: np.ndarray, groups: np.ndarray, voice: np.ndarray | None = None, weight: float = 0.0
) -> np.ndarray:
    """:func:`grouped_logits` as normalised probabilities."""
    logits = grouped_logits(scores, groups, voice, weight)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def grouped_figures(
    data: ProfileSet,
    folds: list[list[str]],
    predictions: list[dict],
    corpora: dict[str, list[str]],
    *,
    calibration: dict,
    corpus_calibrations: dict[str, dict] | None = None,
    log=print,
) -> dict:
    """Both grouped answers' figures by corpus on a cross-validation's folds.

    ``predictions`` are the fold networks' held-out rows (``cross_validate``'s, without the
    temperature); each fold's head is trained on the speakers its network was trained on.  The
    scores are as the model gives them with ``calibration`` (``temperature``, ``slope``, on each
    row's ``distance``: :func:`training.calibration.calibrated`), or for a fold whose test
    speakers are one corpus's with that corpus's entry of ``corpus_calibrations`` (fitted
    without it): the grouped answers depend on the calibration, which must not have seen the
    clips it is measured on.
    Rows whose answer ``emotion_relative`` leaves NULL (nothing stands out: a speaker of one
    clip) are left out of the figures and counted as ``undecided``.
    """
    from training.calibration import calibrated, row_distances
    from training.metrics import corpus_figures
    from udfs.relative import tied

    by_digest = {(row["speaker"], row["clip_sha256"]): row for row in predictions}
    clean = data.conditions == "clean"
    found = {AGAINST_SPEAKER: [], AGAINST_SPEAKER_AND_VOICE: []}
    for test_speakers in folds:
        held_out = np.isin(data.speakers, test_speakers)
        fold_corpora = set(data.corpora[held_out])
        fold_calibration = calibration
        if corpus_calibrations and len(fold_corpora) == 1:
            fold_calibration = corpus_calibrations.get(fold_corpora.pop(), calibration)
        head = fit_voice_head(
            data, ~held_out, corpora, temperature=fold_calibration.get("temperature", 1.0)
        )
        rows = np.flatnonzero(held_out & clean)
        keys = [(data.speakers[i], data.digests[i]) for i in rows]
        rows = [i for i, key in zip(rows, keys) if key in by_digest]
        if not rows:
            continue
        rows = np.array(rows)
        originals = [by_digest[(data.speakers[i], data.digests[i])] for i in rows]
        scores = calibrated(
            np.array([row["probabilities"] for row in originals]),
            fold_calibration,
            row_distances(originals),
        )
        groups = data.speakers[rows].astype(str)
        voice = head.probabilities(
            standardise_within(data.profiles[rows].astype(np.float64), groups)
        )
        plain = grouped_logits(scores, groups)
        fused = grouped_logits(scores, groups, voice, head.fusion_weight)
        found[AGAINST_SPEAKER].append((rows, plain, tied(plain)))
        found[AGAINST_SPEAKER_AND_VOICE].append((rows, fused, tied(plain) | tied(fused)))
    out = {}
    for key, parts in found.items():
        if not parts:
            continue
        rows = np.concatenate([r for r, _, _ in parts])
        logits = np.concatenate([q for _, q, _ in parts])
        undecided = np.concatenate([u for _, _, u in parts])
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        by_corpus = {}
        for corpus in sorted(set(data.corpora[rows])):
            mine = data.corpora[rows] == corpus
            decided = mine & ~undecided
            figures = corpus_figures(data.labels[rows][decided], p[decided], corpora[corpus])
            # Grouped answers come without a confidence: no calibration figures.
            for name in ("expected_calibration_error", "confident_share", "confident_accuracy"):
                figures.pop(name)
            figures["undecided"] = int((mine & undecided).sum())
            by_corpus[corpus] = figures
        mean = float(np.mean([f["unweighted_accuracy"] for f in by_corpus.values()]))
        out[key] = {"corpora": by_corpus, "unweighted_accuracy_mean": mean}
        log(
            f"  {key.removeprefix('by_corpus_').replace('_', ' ')}: "
            + ", ".join(
                f"{c} {f['unweighted_accuracy']:.3f}"
                + (f" ({f['undecided']} undecided)" if f["undecided"] else "")
                for c, f in by_corpus.items()
            )
            + f"; mean {mean:.3f}"
        )
    return out
