"""The TensorFlowOnSpark node: runs on an executor, trains the model from the Spark feed.

``main_fun(args, ctx)`` is what ``TFCluster.run`` starts once per executor.
Spark feeds ``(features_bytes, label_index, corpus_index)`` rows (InputMode.SPARK); every
node trains under ``MultiWorkerMirroredStrategy`` on what it is fed and evaluates
on the same validation speakers (if any) after each epoch.  It keeps the last
epoch's weights, or with ``selection="best"`` the best epoch's by validation
unweighted accuracy, stopping early.  The chief writes the model file and the
training history to ``args.output_dir``.  Imports of TensorFlow stay inside the
function: they happen on the executor.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

#: What the chief writes last in a run, whole (by a rename): its training history. The trainer
#: waits for it, as the feed can end before the chief has trained on the last rows it took.
NODE_HISTORY_FILE = "node_history.json"
#: The chief's traceback when it failed after training began (the driver reports its last line).
NODE_ERROR_FILE = "node_error.txt"


@dataclass
class NodeArgs:
    output_dir: str
    input_shape: tuple[int, int]
    n_classes: int
    prosody_rows: int  # the last rows are prosody rows (FeatureConfig.prosody_rows)
    train_rows: int
    validation_x: object  # np.ndarray [shape=(n, *input_shape), dtype=float32]
    validation_y: object  # np.ndarray [shape=(n,), dtype=int32]
    #: Per corpus (fed rows carry its index): 1 for each emotion it has, in label order.
    label_masks: tuple
    feature_mean: (
        object  # np.ndarray [shape=(input_shape[0],)]: per-coefficient mean of the training rows
    )
    feature_variance: object
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    selection: str = "best"  # training.recipe.SELECTIONS
    inference_warps: tuple = ()  # training.recipe.INFERENCE_WARPS
    # training rows per class; given: the saved model assumes balanced priors
    class_counts: tuple = ()
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

    from training.network import (
        build_model,
        set_normalisation,
        with_prior_correction,
        with_warp_averaging,
    )
    from training.schedule import compile_model

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
            for features, label, corpus in batch:
                yield (
                    np.frombuffer(features, dtype=np.float32).reshape(shape),
                    targets[label, corpus],
                )

    # Every (label, corpus) target of the partial-label loss, looked up per row.
    targets = np.zeros((args.n_classes, len(args.label_masks), 2 * args.n_classes), np.float32)
    for corpus, mask in enumerate(args.label_masks):
        for label in range(args.n_classes):
            targets[label, corpus, label] = 1.0
            targets[label, corpus, args.n_classes :] = mask
    dataset = tf.data.Dataset.from_generator(
        fed_rows,
        output_signature=(
            tf.TensorSpec(shape, tf.float32),
            tf.TensorSpec((2 * args.n_classes,), tf.float32),
        ),
    )
    options = tf.data.Options()
    # Spark already split the rows between the nodes.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    dataset = dataset.shuffle(shuffle_buffer(args.train_rows), seed=args.seed).batch(global_batch)
    dataset = dataset.with_options(options)
    steps_per_epoch = max(1, args.train_rows // global_batch)

    with strategy.scope():
        model = build_model(
            input_shape=shape,
            n_classes=args.n_classes,
            prosody_rows=args.prosody_rows,
            **args.hyperparams,
        )
        set_normalisation(model, mean=args.feature_mean, variance=args.feature_variance)
        compile_model(
            model,
            learning_rate=args.learning_rate,
            steps_per_epoch=steps_per_epoch,
            epochs=args.epochs,
        )

    validating = len(args.validation_y) > 0
    # No validation curve without validation speakers (it would be all NaN, which is not JSON).
    history: dict[str, list[float]] = {
        "loss": [],
        "accuracy": [],
        **({"val_unweighted_accuracy": []} if validating else {}),
    }
    best = {"ua": -1.0, "epoch": 0, "weights": None}
    keep_last = args.selection == "last"
    is_chief = ctx.job_name == "chief" or (
        ctx.job_name == "worker" and ctx.task_index == 0 and workers == 1
    )

    class SelectBest(keras.callbacks.Callback):
        """The history, and with ``selection="best"`` model selection and early stopping on the
        validation speakers only."""

        def on_epoch_end(self, epoch, logs=None):
            ua = validation_ua(model, args.validation_x, args.validation_y, args.n_classes)
            history["loss"].append(float(logs.get("loss", float("nan"))))
            history["accuracy"].append(float(logs.get("accuracy", float("nan"))))
            if validating:
                history["val_unweighted_accuracy"].append(ua)
            if ua > best["ua"]:
                best.update(
                    ua=ua, epoch=epoch + 1, weights=None if keep_last else model.get_weights()
                )
            if args.verbose and is_chief:
                validated = (
                    f"  val UA {ua:.3f}  (best {best['ua']:.3f} @ {best['epoch']})"
                    if validating
                    else ""
                )
                print(
                    f"epoch {epoch + 1:3d}/{args.epochs}  loss "
                    f"{logs.get('loss', float('nan')):.4f}  "
                    f"accuracy {logs.get('accuracy', float('nan')):.3f}{validated}",
                    flush=True,
                )
            if not keep_last and epoch + 1 - best["epoch"] >= args.patience:
                self.model.stop_training = True

    started = time.monotonic()
    try:
        if workers > 1:
            allow_multi_worker_fit(model)
        with strategy.scope() if workers > 1 else contextlib.nullcontext():
            model.fit(
                dataset,
                epochs=args.epochs,
                steps_per_epoch=steps_per_epoch,
                callbacks=[SelectBest()],
                verbose=0,
            )
        if is_chief:
            # A fresh, uncompiled copy: the saved file carries weights, not optimizer state.
            export = build_model(
                input_shape=shape,
                n_classes=args.n_classes,
                prosody_rows=args.prosody_rows,
                **args.hyperparams,
            )
            export.set_weights(model.get_weights() if keep_last else best["weights"])
            export = with_warp_averaging(
                export, args.inference_warps, prosody_rows=args.prosody_rows
            )
            export = with_prior_correction(export, args.class_counts)
            os.makedirs(args.output_dir, exist_ok=True)
            export.save(os.path.join(args.output_dir, "model.keras"))
            history_file = os.path.join(args.output_dir, NODE_HISTORY_FILE)
            with open(history_file + ".tmp", "w", encoding="utf-8") as handle:
                json.dump(
                    # Without validation speakers no epoch is "best": null, not epoch 0 at UA -1.
                    {
                        "history": history,
                        "best_epoch": best["epoch"] or None,
                        "best_val_ua": best["ua"] if best["epoch"] else None,
                        "selection": args.selection,
                        "epochs_run": len(history["loss"]),
                        "fit_seconds": time.monotonic() - started,
                        "workers": workers,
                    },
                    handle,
                )
            os.replace(history_file + ".tmp", history_file)
    except BaseException:
        if is_chief:
            # The driver waits for the chief's files after the feed has ended, when nothing
            # reads the nodes' error queues any more: the reason goes where it looks.
            import traceback

            error_file = os.path.join(args.output_dir, NODE_ERROR_FILE)
            os.makedirs(args.output_dir, exist_ok=True)
            with open(error_file + ".tmp", "w", encoding="utf-8") as handle:
                handle.write(traceback.format_exc())
            os.replace(error_file + ".tmp", error_file)
        raise
    # Tell Spark to skip the epochs of data that were fed for but not needed.
    feed.terminate()
