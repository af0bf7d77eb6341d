"""Screen a training-recipe change quickly: speaker-level K-fold CV fed from memory.

Not the product's trainer (that is ``emoticana train``, TensorFlowOnSpark through the
server): the same recipe (``training.recipe``, ``training.network``), the same features
(``udfs.features``, the ``mfcc`` UDF's code, computed once and cached), the same folds and
validation speakers (``training.trainer``), but the rows are fed from numpy arrays in this one
process, so an idea is screened without a server. After every epoch it records the probabilities on
the fold's unseen test speakers for the input and for each inference warp of it, so the weight
selections (best validation epoch, last epoch) and the inference warps are compared within
the same training run:

    .venv/bin/python bench/screen_recipe.py --audio ../shared/ravdess --folds 1,2,3 \
        [--validation none] [--hyperparam dropout=0.5] [--epochs 60] [--no-pitch] [--out DIR]

Scores are the arg-max of the network's probabilities under the training priors: the
trainer's balanced priors (``--class-priors``) are not applied here.  One fold moves by
several points from run to run (batches and augmentation draws): compare recipes over the
same folds and seed, and decide with whole 5-fold runs.  Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from udfs.audio import decode_audio  # noqa: E402
from udfs.errors import EmoticanaError  # noqa: E402
from udfs.features import DEFAULT_FEATURES, FeatureConfig, mfcc_features  # noqa: E402
from udfs.labels import EMOTIONS  # noqa: E402
from udfs.ravdess import parse_ravdess_name  # noqa: E402


def cached_features(
    audio: Path, cache: Path, config: FeatureConfig = DEFAULT_FEATURES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, label indices, speakers) of every RAVDESS clip under ``audio``, cached in
    ``cache``."""
    settings = json.dumps(config.to_dict(), sort_keys=True)
    if cache.exists():
        data = np.load(cache)
        if str(data["config"]) == settings:
            return data["x"], data["y"], data["speaker"]
        print(f"{cache}: other feature settings, recomputing", flush=True)
    files = sorted(
        p
        for p in audio.rglob("*")
        if p.suffix.lower() in (".wav", ".flac") and parse_ravdess_name(str(p))
    )
    if not files:
        sys.exit(f"no RAVDESS clips (NN-NN-NN-NN-NN-NN-NN.wav/.flac) under {audio}")
    started = time.monotonic()
    x, y, speaker = [], [], []
    for path in files:
        meta = parse_ravdess_name(str(path))
        x.append(mfcc_features(*decode_audio(path.read_bytes()), config=config))
        y.append(EMOTIONS.index(meta.emotion))
        speaker.append(str(int(meta.actor)))
    x, y, speaker = np.stack(x), np.array(y, np.int32), np.array(speaker)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x, y=y, speaker=speaker, config=settings)
    print(
        f"features of {len(files)} clips in {time.monotonic() - started:.0f}s, cached in {cache}",
        flush=True,
    )
    return x, y, speaker


def ua(y: np.ndarray, probabilities: np.ndarray) -> float:
    from training.metrics import confusion_matrix, unweighted_accuracy

    return unweighted_accuracy(confusion_matrix(y, probabilities.argmax(axis=1)))


def screen_fold(
    x,
    y,
    speaker,
    *,
    test,
    validation,
    args,
    hyperparams,
    config: FeatureConfig,
    out: Path,
    number: int,
) -> dict:
    """Train one fold; returns the UA of each way of choosing weights and predicting."""
    import keras
    import tensorflow as tf

    from training import recipe
    from training.network import adapt_normalisation, build_model
    from training.node import batched_probabilities, shuffle_buffer, validation_ua
    from training.schedule import compile_model
    from udfs.model_layers import WarpVariants

    train = [s for s in sorted(set(speaker)) if s not in test and s not in validation]
    pick = lambda speakers: np.isin(speaker, speakers)  # noqa: E731
    xt, yt, xv, yv, xs, ys = (
        x[pick(train)],
        y[pick(train)],
        x[pick(validation)],
        y[pick(validation)],
        x[pick(test)],
        y[pick(test)],
    )
    # The input, then its warps: what the saved model's WarpVariants layer feeds the network.
    test_variants = np.asarray(
        WarpVariants(args.warps, prosody_rows=config.prosody_rows)(xs)
    ).reshape(1 + len(args.warps), *xs.shape)

    keras.utils.set_random_seed(args.seed)
    model = build_model(
        input_shape=x.shape[1:],
        n_classes=len(EMOTIONS),
        prosody_rows=config.prosody_rows,
        **hyperparams,
    )
    adapt_normalisation(model, xt)
    steps = max(1, len(xt) // args.batch_size)
    batches = (
        tf.data.Dataset.from_tensor_slices((xt, yt))
        .shuffle(shuffle_buffer(len(xt)), seed=args.seed)
        .repeat()
        .batch(args.batch_size)
    )
    compile_model(
        model, learning_rate=recipe.LEARNING_RATE, steps_per_epoch=steps, epochs=args.epochs
    )

    record = {"validation_ua": [], "test": []}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            record["test"].append(
                np.stack([batched_probabilities(model, v) for v in test_variants])
            )
            record["validation_ua"].append(validation_ua(model, xv, yv, len(EMOTIONS)))
            if (epoch + 1) % 10 == 0:
                print(
                    f"  fold {number} epoch {epoch + 1}: train accuracy {logs['accuracy']:.3f}  "
                    f"validation UA {record['validation_ua'][-1]:.3f}  test UA "
                    f"{ua(ys, record['test'][-1][0]):.3f}",
                    flush=True,
                )

    started = time.monotonic()
    model.fit(batches, epochs=args.epochs, steps_per_epoch=steps, callbacks=[Record()], verbose=0)
    test_p = np.stack(record["test"])  # (epochs, variants, clips, classes)
    best = int(np.nanargmax(record["validation_ua"])) if len(yv) else len(test_p) - 1
    result = {
        "best validation epoch": ua(ys, test_p[best, 0]),
        "last epoch": ua(ys, test_p[-1, 0]),
        "last epoch + warps": ua(ys, test_p[-1].mean(axis=0)),
    }
    np.savez(
        out / f"fold{number}.npz",
        test=test_p,
        test_y=ys,
        validation_ua=np.array(record["validation_ua"]),
        test_speakers=np.array(test),
        validation_speakers=np.array(validation),
        warps=np.array(args.warps),
    )
    print(
        f"fold {number} (test {', '.join(test)}; validation {', '.join(validation) or 'none'}; "
        f"best epoch {best + 1}; {time.monotonic() - started:.0f}s): "
        + "  ".join(f"{k} {v * 100:.1f}" for k, v in result.items()),
        flush=True,
    )
    return result


def main(argv=None) -> int:
    from training import recipe

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--audio", required=True, type=Path, help="folder of RAVDESS clips (e.g. ../shared/ravdess)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("/tmp/emoticana-screen/features.npz"),
        help="feature cache",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("/tmp/emoticana-screen/run"),
        help="per-fold probabilities (.npz)",
    )
    parser.add_argument("--cv-folds", type=int, default=5)
    parser.add_argument("--folds", default=None, help="which folds to run, e.g. 1,3 (default: all)")
    parser.add_argument(
        "--validation",
        choices=("auto", "none"),
        default="auto",
        help="auto: 15%% of the non-test speakers, as emoticana train; none: train on all of them",
    )
    parser.add_argument("--epochs", type=int, default=recipe.EPOCHS)
    parser.add_argument("--batch-size", type=int, default=recipe.BATCH_SIZE)
    parser.add_argument(
        "--warps", help="inference warps to score, e.g. 0.94,1.06, or none (default: the recipe's)"
    )
    parser.add_argument(
        "--hyperparam",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="override a model hyper-parameter",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pitch",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_FEATURES.pitch,
        help="with the prosody rows (FeatureConfig.pitch; default: the product's features)",
    )
    args = parser.parse_args(argv)

    from server.cli import hyperparam_pair, warp_factors
    from training.trainer import choose_validation_speakers, cross_validation_folds

    # The same option syntax as emoticana train's --inference-warps and --hyperparam.
    try:
        warps = warp_factors(args.warps)
        args.warps = recipe.INFERENCE_WARPS if warps is None else warps
        hyperparams = dict(hyperparam_pair(pair) for pair in args.hyperparam)
    except EmoticanaError as exc:
        parser.error(str(exc))
    config = FeatureConfig.from_dict({**DEFAULT_FEATURES.to_dict(), "pitch": args.pitch})
    overrides = hyperparams
    try:
        # As emoticana train resolves them: --seed seeds the augmentation layers too.
        hyperparams = recipe.resolve_hyperparams(
            {"seed": args.seed, **overrides}, prosody_rows=config.prosody_rows
        )
    except (TypeError, ValueError) as exc:
        parser.error(f"--hyperparam {exc}")
    suffix = "-pitch" if config.pitch else ""
    cache = args.cache.with_name(f"{args.cache.stem}{suffix}{args.cache.suffix}")
    x, y, speaker = cached_features(args.audio, cache, config)
    speakers = sorted(set(speaker.tolist()), key=lambda s: (len(s), s))
    folds = cross_validation_folds(speakers, args.cv_folds)
    chosen = (
        [int(k) for k in args.folds.split(",")] if args.folds else list(range(1, len(folds) + 1))
    )
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"{len(y)} clips, {len(speakers)} speakers, features {x.shape[1:]}; folds {chosen}; "
        f"hyper-parameters {overrides or 'the recipe'}",
        flush=True,
    )
    results = []
    for number in chosen:
        test = folds[number - 1]
        rest = [s for s in speakers if s not in test]
        validation = (
            [] if args.validation == "none" else choose_validation_speakers(rest, fraction=0.15)
        )
        results.append(
            screen_fold(
                x,
                y,
                speaker,
                test=test,
                validation=validation,
                args=args,
                hyperparams=hyperparams,
                config=config,
                out=args.out,
                number=number,
            )
        )
    print(
        "\n| 8-class UA on unseen speakers | "
        f"{' | '.join(f'fold {k}' for k in chosen)} | mean ± sd |"
    )
    print("| --- |" + " --- |" * (len(chosen) + 1))
    for key in results[0]:
        values = np.array([r[key] for r in results]) * 100
        spread = f" ± {values.std(ddof=1):.1f}" if len(values) > 1 else ""
        print(f"| {key} | {' | '.join(f'{v:.1f}' for v in values)} | {values.mean():.1f}{spread} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
