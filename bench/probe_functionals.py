"""Leave one corpus out with a linear model on per-clip statistics of the features.

A probe, not a recipe: how much of the four corpora's emotion a model with no view of time
and 126 weights per emotion carries over to a corpus it never heard, beside the CNN's figures
(`models/*/metrics.json`). If the probe does as well across corpora, the CNN's extra capacity
goes into what one corpus's recordings share rather than into emotion.

The input is a features table that ``emoticana train --keep-features`` kept (its parquet
folder: the ``mfcc`` UDF's matrices, label, speaker, corpus, condition). Per clip, its voice
profile (``udfs.voice.profiles``, what ``voice_profile`` returns in SQL). Trained on the
other corpora's rows (as recorded and degraded) with the partial-label loss
(``training.schedule``), tested on the left-out corpus as recorded, UA over its own emotions
under balanced priors (``training.metrics.corpus_figures``):

    .venv/bin/python bench/probe_functionals.py --features DIR [--epochs 200]

``--normalise speaker`` standardises each clip's statistics over the clips of its speaker and
recording condition (what a speaker's own baseline can give, as ``emotion_relative`` does for the
scores). ``--fuse models/NAME/VERSION/cv_predictions.csv`` then also judges each left-out clip by
the model's held-out leave-one-corpus-out scores against its speaker's baseline (what
``emotion_relative(s, emotion_baseline(s) OVER (PARTITION BY speaker))`` answers) and by that plus
``--fuse-weight`` times the probe's log-probabilities.

Not part of the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from udfs.features import DEFAULT_FEATURES  # noqa: E402
from udfs.labels import EMOTIONS  # noqa: E402
from udfs.voice import profiles, standardise_within  # noqa: E402


def load(folder: Path):
    import pyarrow.parquet as pq

    columns = ["features", "label", "speaker", "corpus", "condition", "digest"]
    table = pq.read_table(folder, columns=columns)
    table = table.filter(table.column("features").is_valid())
    flat = table.column("features").combine_chunks().flatten().to_numpy()
    x = flat.reshape(table.num_rows, *DEFAULT_FEATURES.shape)
    label = np.array([EMOTIONS.index(v) for v in table.column("label").to_pylist()])
    corpus = np.array(table.column("corpus").to_pylist())
    condition = np.array(table.column("condition").to_pylist())
    groups = np.char.add(np.array(table.column("speaker").to_pylist(), dtype=str), "/" + condition)
    digest = np.array(table.column("digest").to_pylist())
    return profiles(x), label, corpus, condition == "clean", groups, digest


def fused_figures(probabilities, digests, label, groups, predictions, emotions, weight):
    """UA over the corpus's own emotions of the model's held-out scores against each speaker's
    mean scores, alone and plus ``weight`` times the probe's log-probabilities."""
    from training.metrics import corpus_figures
    from training.voice_head import grouped_answers

    scores = np.array([predictions[d] for d in digests])
    return {
        "relative": corpus_figures(label, grouped_answers(scores, groups), emotions),
        "fused": corpus_figures(
            label, grouped_answers(scores, groups, probabilities, weight), emotions
        ),
    }


def probe_fold(f, label, corpus, clean, left_out: str, emotions: dict, *, epochs: int, seed: int):
    import keras

    from training.metrics import corpus_figures
    from training.network import balancing_factors
    from training.schedule import fit_softmax_layer
    from training.trainer import corpus_mask

    train, test = corpus != left_out, (corpus == left_out) & clean
    masks = np.array([corpus_mask(emotions[c]) for c in corpus[train]])
    mean, std = f[train].mean(axis=0), f[train].std(axis=0) + 1e-6
    layer = fit_softmax_layer(
        (f[train] - mean) / std,
        label[train],
        masks,
        epochs=epochs,
        batch_size=64,
        learning_rate=1e-2,
        seed=seed,
    )
    model = keras.Sequential([keras.Input((f.shape[1],)), layer])
    probabilities = model.predict((f[test] - mean) / std, verbose=0)
    counts = np.bincount(label[train], minlength=len(EMOTIONS))
    balanced = probabilities * np.asarray(balancing_factors(counts))
    balanced /= balanced.sum(axis=1, keepdims=True)
    return corpus_figures(label[test], balanced, emotions[left_out]), balanced, test


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--features", type=Path, required=True, help="parquet folder of a kept features table"
    )
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normalise", choices=("none", "speaker"), default="none")
    parser.add_argument("--fuse", type=Path, help="a model's cv_predictions.csv")
    parser.add_argument("--fuse-weight", type=float, default=0.5)
    args = parser.parse_args(argv)
    started = time.monotonic()
    f, label, corpus, clean, groups, digest = load(args.features)
    if args.normalise == "speaker":
        f = standardise_within(f, groups)
    predictions = {}
    if args.fuse:
        from training.trainer import read_cv_predictions

        for row in read_cv_predictions(args.fuse):
            if row["cv_by"] == "corpus":
                predictions[row["clip_sha256"]] = row["probabilities"]
    emotions = {
        c: sorted({EMOTIONS[i] for i in label[corpus == c]}, key=EMOTIONS.index)
        for c in sorted(set(corpus))
    }
    print(f"{len(label)} rows, {f.shape[1]} statistics a clip ({time.monotonic() - started:.0f} s)")
    figures, fused = {}, {"relative": {}, "fused": {}}
    for left_out in sorted(emotions):
        fold, probabilities, test = probe_fold(
            f, label, corpus, clean, left_out, emotions, epochs=args.epochs, seed=args.seed
        )
        figures[left_out] = ua = fold["unweighted_accuracy"]
        recall = ", ".join(f"{k} {v:.2f}" for k, v in fold["per_class_recall"].items())
        print(f"{left_out}: UA {ua:.3f} over {len(emotions[left_out])} emotions ({recall})")
        if predictions:
            both = fused_figures(
                probabilities,
                digest[test],
                label[test],
                groups[test],
                predictions,
                emotions[left_out],
                args.fuse_weight,
            )
            for name, result in both.items():
                fused[name][left_out] = result["unweighted_accuracy"]
            print(
                f"  the model against its speaker {fused['relative'][left_out]:.3f}, "
                f"and with the probe {fused['fused'][left_out]:.3f}"
            )
    print(f"mean UA {np.mean(list(figures.values())):.3f}  ({time.monotonic() - started:.0f} s)")
    if predictions:
        print(
            "mean UA of the model against its speaker "
            f"{np.mean(list(fused['relative'].values())):.3f}, with the probe (weight "
            f"{args.fuse_weight}) {np.mean(list(fused['fused'].values())):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
