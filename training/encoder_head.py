"""The encoder head: a small network on the pretrained speech encoder's states, fused with a
published model's network into the next version (``emoticana train --encoder-head-for``).

The network is kept as it is (its weights, its folds' held-out predictions); the head, one hidden
layer under dropout, is trained on the same features table, on every recording condition of the
network's speakers, with the network's partial-label loss and balanced priors.  The new model
answers ``softmax(log p + w log q)``, ``p`` the network's balanced probabilities, ``q`` the
head's, then a temperature fitted again on the fused held-out predictions, raised on audio
whose encoder states lie far from the training clips' (:mod:`training.calibration`).  Its
figures are those of the fusion on the network's very folds: every held-out clip judged by a
fold network and a fold head that never heard its corpus (or speaker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from udfs.labels import EMOTIONS

#: Weight of the head's log-probabilities beside the network's (scores without temperature).
#: On the held-out folds 0.5 and 1 decide best among a corpus's own emotions.  The head, a ReLU
#: layer, is all but certain on tones, sweeps and buzz, audio far from any speech it learnt: the
#: calibration's distance term (training.calibration) is what keeps such audio unsure, so the
#: weight need not be held down for it (docs/model-history.md).
FUSION_WEIGHT = 0.5

#: The head: standardised states, dropout, one hidden layer, dropout, softmax.  Regularised this
#: way it carries to a corpus it never heard better than a softmax layer on the states, which
#: learns the training corpora's particulars (docs/model-history.md).
HIDDEN_UNITS = 256
INPUT_DROPOUT = 0.2
HIDDEN_DROPOUT = 0.5
EPOCHS = 60
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


def fit_head(states, labels, corpora_of_rows, corpora: dict[str, list[str]], *, seed: int = 0):
    """A Keras model from encoder states to balanced class probabilities, trained on the rows
    given (each teaching only its corpus's emotions)."""
    import keras

    from training.network import balancing_factors
    from training.schedule import apply_layers, fit_layers
    from training.trainer import corpus_mask
    from udfs.model_layers import PriorCorrection

    x = np.asarray(states, dtype=np.float32)
    masks = np.array([corpus_mask(corpora[c]) for c in corpora_of_rows])
    normalise = keras.layers.Normalization(name="encoder_normalise")
    normalise.adapt(x)
    keras.utils.set_random_seed(seed)
    layers = [
        keras.layers.Dropout(INPUT_DROPOUT, name="encoder_input_dropout"),
        keras.layers.Dense(HIDDEN_UNITS, activation="relu", name="encoder_hidden"),
        keras.layers.Dropout(HIDDEN_DROPOUT, name="encoder_hidden_dropout"),
        keras.layers.Dense(len(EMOTIONS), activation="softmax", name="encoder_emotion"),
    ]
    fit_layers(
        np.asarray(normalise(x)),
        labels,
        masks,
        layers,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
    )
    # The trained layers again, behind the standardisation: one functional graph, which a saved
    # model loads back (a nested Sequential does not).
    inputs = keras.Input((x.shape[1],))
    factors = balancing_factors(np.bincount(labels, minlength=len(EMOTIONS)))
    outputs = PriorCorrection(factors, name="encoder_balance_priors")(
        apply_layers(layers, normalise(inputs))
    )
    return keras.Model(inputs, outputs, name="encoder_head")


#: The temporal head: every frame's states of the encoder's three layers, standardised, dropout,
#: a ReLU layer per frame, two convolutions over time (the second dilated), the mean and spread
#: over the frames that are not padding, dropout, softmax.  The pooled head sees only the
#: states' mean and spread; how they move over the clip is what this one adds, and the two
#: heads' answers together carried to a corpus never heard better than either, or than two
#: pooled heads (docs/model-history.md).
TEMPORAL_UNITS = 96
TEMPORAL_KERNEL = 5
TEMPORAL_EPOCHS = 30


@dataclass(frozen=True)
class FrameSet:
    """Every frame's encoder states of a features table's rows, in the row order of the
    :class:`training.voice_head.ProfileSet` of their pooled states (:func:`load_frames`):
    ``sound`` ``(n, frames)`` marks the frames that are not padding, ``frames`` ``(n, frames,
    units)`` half precision."""

    sound: np.ndarray
    frames: np.ndarray


def fit_temporal_head(
    frames: FrameSet, rows, labels, corpora_of_rows, corpora: dict[str, list[str]], *, seed=0
):
    """A Keras model from ``[front end power, frame states]`` (``build_encoder(frames=True)``'s
    second and third outputs) to balanced class probabilities, trained on the ``rows`` (indices)
    of ``frames``; ``labels`` and ``corpora_of_rows`` are those rows'.  The rows are read from
    ``frames`` a batch at a time: the training frames are never copied whole (several GB)."""
    import keras

    from training.network import balancing_factors
    from training.schedule import compile_model, partial_targets
    from training.trainer import corpus_mask
    from udfs.model_layers import PriorCorrection, SpeechFrameStatistics

    rows = np.asarray(rows)
    sampled = rows[::7]
    sample = np.asarray(frames.frames[sampled], dtype=np.float32)[frames.sound[sampled]]
    masks = np.array([corpus_mask(corpora[c]) for c in corpora_of_rows])
    keras.utils.set_random_seed(seed)
    power = keras.Input((frames.frames.shape[1], None), name="encoder_power")
    states = keras.Input(frames.frames.shape[1:], name="encoder_frames")
    x = keras.layers.Normalization(
        mean=sample.mean(axis=0), variance=sample.var(axis=0) + 1e-6, name="temporal_normalise"
    )(states)
    del sample
    x = keras.layers.Dropout(INPUT_DROPOUT, name="temporal_input_dropout")(x)
    x = keras.layers.Dense(TEMPORAL_UNITS, activation="relu", name="temporal_frame")(x)
    for dilation in (1, 2):
        x = keras.layers.Conv1D(
            TEMPORAL_UNITS,
            TEMPORAL_KERNEL,
            padding="same",
            dilation_rate=dilation,
            activation="relu",
            name=f"temporal_conv{dilation}",
        )(x)
    x = SpeechFrameStatistics(1e-6, name="temporal_statistics")([power, x])
    x = keras.layers.Dropout(HIDDEN_DROPOUT, name="temporal_dropout")(x)
    probabilities = keras.layers.Dense(
        len(EMOTIONS), activation="softmax", name="temporal_emotion"
    )(x)
    model = keras.Model([power, states], probabilities)
    compile_model(
        model,
        learning_rate=LEARNING_RATE,
        steps_per_epoch=int(np.ceil(len(labels) / BATCH_SIZE)),
        epochs=TEMPORAL_EPOCHS,
    )
    model.fit(
        frame_batches(frames, rows, partial_targets(labels, masks), seed=seed),
        epochs=TEMPORAL_EPOCHS,
        verbose=0,
    )
    factors = balancing_factors(np.bincount(labels, minlength=len(EMOTIONS)))
    outputs = PriorCorrection(factors, name="temporal_balance_priors")(probabilities)
    return keras.Model([power, states], outputs, name="temporal_head")


def temporal_answers(head, frames: FrameSet, rows) -> np.ndarray:
    """:func:`fit_temporal_head`'s ``head``'s probabilities for the ``rows`` of ``frames``, in
    their order, read a batch at a time."""
    return np.asarray(head.predict(frame_batches(frames, rows), verbose=0), dtype=np.float64)


def frame_batches(frames: FrameSet, rows, targets=None, *, seed=None):
    """The ``rows`` of ``frames`` as Keras batches of ``[power, frame states]`` in single
    precision (the power input: 1 on the frames that are not padding, the one band
    ``SpeechFrameStatistics`` needs), with ``targets`` for training, in a new order every epoch
    (``seed``); without ``targets``, in the order given."""
    import keras

    rows = np.asarray(rows)

    class FrameBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.random = np.random.default_rng(seed)
            self.order = np.arange(len(rows))
            self.on_epoch_end()

        def __len__(self):
            return int(np.ceil(len(rows) / BATCH_SIZE))

        def on_epoch_end(self):
            if targets is not None:
                self.random.shuffle(self.order)

        def __getitem__(self, index):
            positions = self.order[index * BATCH_SIZE : (index + 1) * BATCH_SIZE]
            if targets is not None:
                # Reading in file order is faster; a training batch's order does not matter.
                positions = np.sort(positions)
            chosen = rows[positions]
            inputs = (
                frames.sound[chosen][..., None].astype(np.float32),
                np.asarray(frames.frames[chosen], dtype=np.float32),
            )
            if targets is None:
                return (inputs,)
            return inputs, targets[positions]

    return FrameBatches()


def load_frames(spark, location: str, directory: Path):
    """The encoder's pooled states (a ``ProfileSet``, as ``training.trainer.encoder_states``
    gives them) and every frame's states (a :class:`FrameSet`) of the features table at
    ``location``, from one pass of the encoder computed by Spark next to the data: the frames
    are written by each task into ``directory`` (the run's work directory: a few GB in half
    precision, too many to collect)."""
    from training.voice_head import feature_matrices, feature_rows, profile_set
    from udfs.speech_encoder import encoder_frames

    out = str(directory)

    def compute(index, rows):
        rows = list(rows)
        if not rows:
            return
        pooled, sound, frames = [], [], []
        for start in range(0, len(rows), 128):
            states, power, states_by_frame = encoder_frames(
                feature_matrices(rows[start : start + 128])
            )
            pooled.append(states)
            sound.append(power.sum(axis=-1) > 0)
            frames.append(states_by_frame.astype(np.float16))
        np.save(f"{out}/frames-{index:05d}.npy", np.concatenate(frames))
        np.save(f"{out}/sound-{index:05d}.npy", np.concatenate(sound))
        for r, p in zip(rows, np.concatenate(pooled)):
            yield index, (p.tolist(), *r[1:])

    found = feature_rows(spark, location).mapPartitionsWithIndex(compute).collect()
    # collect() keeps the partitions' order, which the files' indices name.
    parts = sorted({index for index, _ in found})
    frames = FrameSet(
        sound=np.concatenate([np.load(directory / f"sound-{i:05d}.npy") for i in parts]),
        frames=np.concatenate(
            [np.load(directory / f"frames-{i:05d}.npy", mmap_mode="r") for i in parts]
        ),
    )
    return profile_set([row for _, row in found]), frames


def state_statistics(states) -> dict:
    """The training ``states``' mean and variance, and the log distance (from them) that the
    ``quantile`` (:data:`training.calibration.DISTANCE_QUANTILE`) of the training clips stay
    within, ``log_reference``."""
    from training.calibration import DISTANCE_QUANTILE

    x = np.asarray(states, dtype=np.float64)
    statistics = {"mean": x.mean(axis=0), "variance": x.var(axis=0)}
    own = distances(x, {**statistics, "log_reference": 0.0})
    return {
        **statistics,
        "quantile": DISTANCE_QUANTILE,
        "log_reference": float(np.quantile(own, DISTANCE_QUANTILE)),
    }


def distances(states, statistics: dict) -> np.ndarray:
    """Each row's log distance from the training states of ``statistics``, over the reference
    (:class:`udfs.model_layers.DistanceTemperature` computes the same)."""
    from udfs.model_layers import log_state_distance

    log_distance = log_state_distance(
        np.asarray(states, dtype=np.float64), statistics["mean"], statistics["variance"]
    )
    return np.asarray(log_distance, dtype=np.float64) - statistics["log_reference"]


def fuse(p: np.ndarray, q: np.ndarray, weight: float = FUSION_WEIGHT) -> np.ndarray:
    """What :class:`udfs.model_layers.LogLinearFusion` computes, on arrays."""
    logits = np.log(np.maximum(p, 1e-12)) + weight * np.log(np.maximum(q, 1e-12))
    out = np.exp(logits - logits.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def fused_predictions(
    states, folds, predictions, corpora, *, frames: FrameSet | None = None, log=print
) -> list[dict]:
    """The network's held-out ``predictions`` (a cross-validation's rows, without temperature)
    fused with the held-out answers of a head trained per fold on the other speakers' rows of
    every condition (``states``: a :class:`training.voice_head.ProfileSet` of encoder states;
    with ``frames``, a temporal head beside it, :func:`fuse_heads`), each row with its
    ``distance`` from that fold's training states."""
    by_key = {(row["speaker"], row["clip_sha256"]): row for row in predictions}
    clean = states.conditions == "clean"
    fused = []
    for test_speakers in folds:
        started = time.monotonic()
        held_out = np.isin(states.speakers, test_speakers)
        head = fit_head(
            states.profiles[~held_out],
            states.labels[~held_out],
            states.corpora[~held_out],
            corpora,
        )
        rows = [
            i
            for i in np.flatnonzero(held_out & clean)
            if (states.speakers[i], states.digests[i]) in by_key
        ]
        if not rows:
            continue
        q = np.asarray(head.predict(states.profiles[rows], verbose=0), dtype=np.float64)
        far = distances(states.profiles[rows], state_statistics(states.profiles[~held_out]))
        temporal = None
        if frames is not None:
            train = np.flatnonzero(~held_out)
            temporal_head = fit_temporal_head(
                frames, train, states.labels[train], states.corpora[train], corpora
            )
            temporal = temporal_answers(temporal_head, frames, rows)
        originals = [by_key[(states.speakers[i], states.digests[i])] for i in rows]
        p = fuse_heads(np.array([row["probabilities"] for row in originals]), q, temporal)
        for row, probabilities, distance in zip(originals, p, far):
            fused.append(
                {
                    **row,
                    "probabilities": probabilities.tolist(),
                    "predicted": EMOTIONS[int(np.argmax(probabilities))],
                    "distance": float(distance),
                }
            )
        log(
            f"  encoder head for {len(test_speakers)} held-out speakers: {len(rows)} clips "
            f"({time.monotonic() - started:.0f}s)"
        )
    if len(fused) != len(predictions):
        # Fused figures over fewer clips than the network's would not compare with them.
        log(
            f"  warning: {len(predictions) - len(fused)} of the network's {len(predictions)} "
            "held-out rows have no encoder states and are left out of the fused figures"
        )
    return fused


def fused_summary(kind: str, summary: dict, fused: list[dict], corpora) -> dict:
    """A cross-validation's summary for the fused answers ``fused`` on the folds of the network's
    ``summary``: each fold's and the pooled figures of the answers among all eight, each corpus's
    (:func:`training.metrics.figures_by_corpus`), and the network's alone beside them."""
    from training.metrics import evaluation_summary, figures_by_corpus

    def figures(rows):
        return evaluation_summary(
            np.array([EMOTIONS.index(row["label"]) for row in rows], dtype=int),
            np.array([EMOTIONS.index(row["predicted"]) for row in rows], dtype=int),
        )

    folds = []
    for fold in summary["folds"]:
        mine = figures([row for row in fused if row["speaker"] in set(fold["test_speakers"])])
        folds.append(
            {"test_speakers": fold["test_speakers"]}
            | {k: mine[k] for k in ("n", "unweighted_accuracy", "weighted_accuracy")}
        )
    accuracies = [fold["unweighted_accuracy"] for fold in folds]
    return {
        "by": kind,
        "folds": folds,
        "confusion": figures(fused)["confusion"],
        "unweighted_accuracy_mean": float(np.mean(accuracies)),
        # Sample spread, as the network's own summary gives it (training.trainer).
        "unweighted_accuracy_std": float(np.std(accuracies, ddof=1)) if len(folds) > 1 else 0.0,
        "by_corpus": figures_by_corpus(fused, corpora),
        "network_alone": summary.get("by_corpus"),
        "encoder_fusion_weight": FUSION_WEIGHT,
    }


def fuse_heads(p: np.ndarray, q: np.ndarray, temporal=None, weight: float = FUSION_WEIGHT):
    """:func:`fuse` of the network's ``p`` with the pooled head's ``q`` and, when given, the
    temporal head's answers: each head then at half the weight (their geometric mean at the
    whole weight), as :func:`fused_model` computes."""
    if temporal is None:
        return fuse(p, q, weight)
    return fuse(fuse(p, q, weight / 2), temporal, weight / 2)


def fused_model(
    network_file,
    head,
    statistics: dict,
    calibration: dict,
    weight: float = FUSION_WEIGHT,
    temporal=None,
):
    """The published model's balanced network (its temperature left out) and ``head`` on the
    speech encoder's states (with ``temporal``, :func:`fit_temporal_head`'s model, beside it:
    :func:`fuse_heads`), as one Keras model on the feature matrix, ending in ``calibration``
    (``temperature``, ``slope``) on the distance from the training states of ``statistics``
    (:func:`state_statistics`)."""
    import keras

    from udfs.model_format import load_keras_model_file
    from udfs.model_layers import DistanceTemperature, LogLinearFusion, Temperature
    from udfs.speech_encoder import build_encoder

    published = load_keras_model_file(network_file)
    network = published
    if isinstance(published.layers[-1], Temperature):
        network = published.layers[-2]
    inputs = keras.Input(shape=network.input_shape[1:], name="mfcc")
    p = network(inputs)
    if temporal is None:
        states = build_encoder()(inputs)
        fused = LogLinearFusion(weight, name="fuse_encoder")([p, head(states)])
    else:
        states, power, frames = build_encoder(frames=True)(inputs)
        fused = LogLinearFusion(weight / 2, name="fuse_encoder")([p, head(states)])
        fused = LogLinearFusion(weight / 2, name="fuse_temporal")(
            [fused, temporal([power, frames])]
        )
    outputs = DistanceTemperature(
        calibration["temperature"],
        calibration["slope"],
        statistics["log_reference"],
        statistics["mean"],
        statistics["variance"],
        name="calibrate",
    )([fused, states])
    return keras.Model(inputs, outputs, name="emoticana_with_encoder")
