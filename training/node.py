"""The TensorFlowOnSpark node: runs on an executor, trains the model from the Spark feed.

``main_fun(args, ctx)`` is what ``TFCluster.run`` starts once per executor.
Spark feeds ``(features_bytes, label_index)`` rows (InputMode.SPARK); every
node trains under ``MultiWorkerMirroredStrategy`` on what it is fed, evaluates
on the same validation speakers after each epoch, keeps the weights of the best
epoch by validation unweighted accuracy and stops early.  The chief writes the
model file and the training history to ``args.output_dir``.  Imports of
TensorFlow stay inside the function: they happen on the executor.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields


@dataclass
class NodeArgs:
    output_dir: str
    input_shape: tuple[int, int]
    n_classes: int
    prosody_rows: int  # the last rows are prosody rows (FeatureConfig.prosody_rows)
    train_rows: int
    validation_x: object  # np.ndarray [shape=(n, *input_shape), dtype=float32]
    validation_y: object  # np.ndarray [shape=(n,), dtype=int32]
    feature_mean: (
        object  # np.ndarray [shape=(input_shape[0],)]: per-coefficient mean of the training rows
    )
    feature_variance: object
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    selection: str = "best"  # training.model.SELECTIONS
    average_epochs: int = 10  # with selection "average"; "last" is the average of 1
    inference_warps: tuple = ()  # training.model.INFERENCE_WARPS
    class_counts: tuple = ()  # training rows per class; given: the saved model assumes balanced priors
    hyperparams: dict = field(default_factory=dict)
    seed: int = 0
    nodes: int = 1
    verbose: bool = True

    def as_namespace(self) -> argparse.Namespace:
        """TensorFlowOnSpark looks options up with ``in`` and attributes, as on argparse results."""
        return argparse.Namespace(**{f.name: getattr(self, f.name) for f in fields(self)})


def shuffle_buffer(train_rows: int) -> int:
    """Rows held for shuffling: the whole training set when it is small, capped for memory."""
    return min(train_rows, 2048)


class WeightAverage:
    """Running mean of a model's weights over epochs (stochastic weight averaging).

    ``add`` takes ``model.get_weights()``: a list of numpy arrays.  Float arrays
    (kernels, biases, batch-norm statistics) are averaged in their own dtype;
    others (the normalisation layer's integer sample count) keep the latest value.
    """

    def __init__(self):
        self.count = 0
        self.weights: list | None = None

    def add(self, weights: list) -> None:
        import numpy as np

        n = self.count
        if n == 0:
            self.weights = [np.array(w, copy=True) for w in weights]
        else:
            self.weights = [
                ((a * n + w) / (n + 1)).astype(w.dtype)
                if np.issubdtype(w.dtype, np.floating)
                else np.array(w, copy=True)
                for a, w in zip(self.weights, weights)
            ]
        self.count = n + 1


def batched_probabilities(model, x, batch: int = 64):
    """``model``'s output for every row of ``x``, in batches, on this node alone.

    Direct calls rather than ``model.predict``: under a multi-worker strategy predict
    would shard the rows between the nodes.
    """
    import numpy as np

    return np.concatenate(
        [
            np.asarray(model(x[start : start + batch], training=False))
            for start in range(0, len(x), batch)
        ]
    )


def validation_ua(model, x, y, n_classes: int) -> float:
    """Unweighted accuracy on the validation rows; NaN when there are none."""
    import numpy as np

    from training.metrics import confusion_matrix, unweighted_accuracy

    if len(y) == 0:
        return float("nan")
    predicted = np.argmax(batched_probabilities(model, x), axis=1)
    return unweighted_accuracy(confusion_matrix(y, predicted, n_classes=n_classes))


def allow_multi_worker_fit(model) -> None:
    """Work around Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy`` with 2+ workers.

    Keras 3 (keras-team/keras#20585) fails there twice: its symbolic build converts a
    per-replica batch to a tensor, and its per-step reduction of the scalar logs asks
    for ``axis=0``.  So the model forgets the strategy it was built under (``fit`` then
    runs inside ``strategy.scope()`` and finds it there, building lazily), and the
    logs are averaged across workers without an axis.  Gradients are all-reduced by
    the strategy as before.  Only for more than one node: local training is untouched.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    model._distribute_strategy = None
    original = getattr(tf_trainer.reduce_per_replica, "__wrapped__", tf_trainer.reduce_per_replica)

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values
            )
        return original(values, strategy, reduction)

    reduce_per_replica.__wrapped__ = original
    tf_trainer.reduce_per_replica = reduce_per_replica


def drop_single_node_cluster(environ=None) -> bool:
    """Remove TensorFlowOnSpark's ``TF_CONFIG`` when its cluster is this one node.

    With a cluster in ``TF_CONFIG``, ``MultiWorkerMirroredStrategy`` starts TensorFlow's gRPC
    server, which listens on every interface (TensorFlow hard-codes the wildcard address).
    One node has no one to talk to: without ``TF_CONFIG`` the same strategy runs on this
    process alone and opens no port.  Returns whether it was removed.
    """
    import json
    import os

    environ = os.environ if environ is None else environ
    cluster = json.loads(environ.get("TF_CONFIG") or "{}").get("cluster", {})
    if sum(len(tasks) for tasks in cluster.values()) != 1:
        return False
    del environ["TF_CONFIG"]
    return True


def main_fun(args: argparse.Namespace, ctx) -> None:
    """Train on the fed rows; ``args`` is :meth:`NodeArgs.as_namespace`."""
    import contextlib
    import json
    import os
    import time

    import keras
    import numpy as np
    import tensorflow as tf
    from tensorflowonspark import TFNode

    from training import model as recipe

    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed + ctx.task_index)
    drop_single_node_cluster()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    workers = max(1, ctx.num_workers)
    # The recipe's batch is the global batch: each of N nodes takes batch/N rows per step (the
    # strategy splits every batch between the replicas), so N nodes take the same optimizer steps
    # on the same amount of data per step as local training and reach the same model quality.
    global_batch = args.batch_size
    shape = tuple(args.input_shape)
    feed = TFNode.DataFeed(ctx.mgr, train_mode=True)

    def fed_rows():
        while not feed.should_stop():
            batch = feed.next_batch(64)
            if not batch:
                return
            for features, label in batch:
                yield np.frombuffer(features, dtype=np.float32).reshape(shape), np.int32(label)

    dataset = tf.data.Dataset.from_generator(
        fed_rows,
        output_signature=(tf.TensorSpec(shape, tf.float32), tf.TensorSpec((), tf.int32)),
    )
    options = tf.data.Options()
    # Spark already split the rows between the nodes.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    dataset = dataset.shuffle(shuffle_buffer(args.train_rows), seed=args.seed).batch(global_batch)
    dataset, one_hot_labels = recipe.training_batches(
        dataset, args.hyperparams, n_classes=args.n_classes, seed=args.seed + ctx.task_index
    )
    dataset = dataset.with_options(options)
    steps_per_epoch = max(1, args.train_rows // global_batch)

    with strategy.scope():
        model = recipe.build_model(
            input_shape=shape,
            n_classes=args.n_classes,
            prosody_rows=args.prosody_rows,
            **args.hyperparams,
        )
        recipe.set_normalisation(model, mean=args.feature_mean, variance=args.feature_variance)
        # An ensemble fits through a view of it whose output is every member's (each its own loss).
        trainable = recipe.compile_model(
            model,
            learning_rate=args.learning_rate,
            steps_per_epoch=steps_per_epoch,
            epochs=args.epochs,
            one_hot_labels=one_hot_labels,
        )

    validating = len(args.validation_y) > 0
    # No validation curve without validation speakers (it would be all NaN, which is not JSON).
    history: dict[str, list[float]] = {
        "loss": [],
        "accuracy": [],
        **({"val_unweighted_accuracy": []} if validating else {}),
    }
    best = {"ua": -1.0, "epoch": 0, "weights": None}
    averaging = args.selection in ("last", "average")
    average_from = max(
        1, args.epochs - (1 if args.selection == "last" else args.average_epochs) + 1
    )
    average = WeightAverage()
    is_chief = ctx.job_name == "chief" or (
        ctx.job_name == "worker" and ctx.task_index == 0 and workers == 1
    )

    class SelectBest(keras.callbacks.Callback):
        """Model selection and early stopping on the validation speakers only, or the average of the last epochs."""

        def on_epoch_end(self, epoch, logs=None):
            ua = validation_ua(model, args.validation_x, args.validation_y, args.n_classes)
            history["loss"].append(float(logs.get("loss", float("nan"))))
            history["accuracy"].append(float(logs.get("accuracy", float("nan"))))
            if validating:
                history["val_unweighted_accuracy"].append(ua)
            if ua > best["ua"]:
                best.update(
                    ua=ua, epoch=epoch + 1, weights=None if averaging else model.get_weights()
                )
            if averaging and epoch + 1 >= average_from:
                average.add(model.get_weights())
            if args.verbose and is_chief:
                validated = (
                    f"  val UA {ua:.3f}  (best {best['ua']:.3f} @ {best['epoch']})"
                    if validating
                    else ""
                )
                print(
                    f"epoch {epoch + 1:3d}/{args.epochs}  loss {logs.get('loss', float('nan')):.4f}  "
                    f"accuracy {logs.get('accuracy', float('nan')):.3f}{validated}",
                    flush=True,
                )
            if not averaging and epoch + 1 - best["epoch"] >= args.patience:
                self.model.stop_training = True

    started = time.monotonic()
    if workers > 1:
        allow_multi_worker_fit(trainable)
    with strategy.scope() if workers > 1 else contextlib.nullcontext():
        trainable.fit(
            dataset,
            epochs=args.epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=[SelectBest()],
            verbose=0,
        )
    if is_chief:
        # A fresh, uncompiled copy: the saved file carries weights, not optimizer state.
        export = recipe.build_model(
            input_shape=shape,
            n_classes=args.n_classes,
            prosody_rows=args.prosody_rows,
            **args.hyperparams,
        )
        export.set_weights(average.weights if averaging else best["weights"])
        export = recipe.with_warp_averaging(
            export, args.inference_warps, prosody_rows=args.prosody_rows
        )
        export = recipe.with_prior_correction(export, args.class_counts)
        os.makedirs(args.output_dir, exist_ok=True)
        export.save(os.path.join(args.output_dir, "model.keras"))
        with open(
            os.path.join(args.output_dir, "node_history.json"), "w", encoding="utf-8"
        ) as handle:
            json.dump(
                # Without validation speakers no epoch is "best": null, not epoch 0 at UA -1.
                {
                    "history": history,
                    "best_epoch": best["epoch"] or None,
                    "best_val_ua": best["ua"] if best["epoch"] else None,
                    "selection": args.selection,
                    "averaged_epochs": [average_from, average_from + average.count - 1]
                    if averaging
                    else None,
                    "epochs_run": len(history["loss"]),
                    "fit_seconds": time.monotonic() - started,
                    "workers": workers,
                },
                handle,
            )
    # Tell Spark to skip the epochs of data that were fed for but not needed.
    feed.terminate()
