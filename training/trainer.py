"""``emoticana train``: train the emotion CNN with TensorFlowOnSpark from a SQL view.

1. The running server computes ``mfcc`` over the view into Parquet (``training.sources``).
2. The trainer starts its own Spark application (same master, loopback addresses) and splits
   the rows by speaker: validation speakers are never trained on.  With no validation speakers
   (``--validation-speakers none``) every speaker is trained on and the model's figures come
   from the cross-validation alone.
3. ``TFCluster.run`` starts one TF node per executor (InputMode.SPARK, MultiWorkerMirroredStrategy)
   and Spark feeds the training rows to them (``training.node``).
4. The driver evaluates the chosen weights on the validation speakers and writes a versioned
   model directory (``training.artifacts``); an interrupted run leaves no half-written version.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from server.code_zip import is_local_master
from server.settings import SHIPPED_MODELS_DIR, Settings
from training import artifacts, recipe, voice_head
from training.feeding import feed as feed_nodes
from training.metrics import evaluation_summary, figures_by_corpus
from training.node import NODE_ERROR_FILE, NODE_HISTORY_FILE, NodeArgs, main_fun, shuffle_buffer
from training.sources import CORPUS_COLUMN, PreparedFeatures, TrainingDataError
from training.voice_head import ProfileSet
from udfs import speech_encoder
from udfs.errors import ConfigError, EmoticanaError
from udfs.features import DEFAULT_FEATURES
from udfs.labels import EMOTIONS
from udfs.model_format import (
    CV_PREDICTIONS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    VIEW_FILE,
    ModelInfo,
    check_model_name,
    cross_validation_key,
    load_keras_model_file,
    read_json,
)
from udfs.model_format import (
    cross_validations as recorded_cross_validations,
)
from udfs.voice import VOICE_HEAD_FILE

TFOS_DAEMON_MODULE = "training.tfos_daemon"
# glibc malloc returns TensorFlow's large per-step tensors to the kernel (heap trimming, the
# dynamic mmap threshold) and faults them in again on the next step: under the node's
# tf.distribute strategy those page faults make every epoch much slower.  These keep freed memory
# for reuse (docs/training.md, "Memory and speed").  Environment variables, because glibc reads
# them once, when a process starts; only the trainer's application gets them.
TRAINER_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),  # the largest threshold glibc takes (64-bit)
    "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
    "MALLOC_TOP_PAD_": str(256 << 20),
}


class TrainingError(EmoticanaError):
    """TensorFlowOnSpark training failed; the message carries the executor's reason."""


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is among the exceptions ``exc`` was raised while handling
    (``raise ... from None`` hides them from the traceback, not from ``__context__``): a stop
    signal that lands inside a py4j call comes back as py4j's own network error."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass
class TrainOptions:
    name: str = "emoticana"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    patience: int | None = None
    selection: str | None = None  # training.recipe.SELECTIONS; None: the recipe's
    inference_warps: tuple[float, ...] | None = None  # None: training.recipe.INFERENCE_WARPS
    class_priors: str | None = None  # training.recipe.CLASS_PRIORS_CHOICES; None: the recipe's
    validation_speakers: list[str] | None = None
    validation_fraction: float = 0.15
    nodes: int = 1
    hyperparams: dict = field(default_factory=dict)
    seed: int = 0
    #: Cross-validation folds by "speaker" (``--cv-folds K`` groups of speakers), by "corpus"
    #: (leave one corpus out: each corpus in turn is the test set), or both, comma-separated
    #: (:func:`cv_kinds`); the first is the model's ``cross_validation`` and its calibration.
    cv_by: str = "speaker"
    #: Keep the features table on the server (its name is printed) for ``features_table``.
    keep_features: bool = False
    #: A kept features table of the same view to train from instead of computing features.
    features_table: str | None = None
    #: Train no network: publish this model version (``name/version``) again with a voice head
    #: trained on the view's features, and its held-out grouped figures.
    voice_head_for: str | None = None
    #: Train no network: publish this model version again, its network fused with a head on the
    #: pretrained speech encoder's states (:mod:`training.encoder_head`).
    encoder_head_for: str | None = None
    #: After the network is published, publish it again as the next version fused with the
    #: speech encoder's head (what ``encoder_head_for`` does, in the same run): the shipped
    #: model's recipe in one command.
    encoder_head: bool = False
    #: With the encoder head, a second head on every frame's encoder states beside it
    #: (:func:`training.encoder_head.fit_temporal_head`).
    temporal_head: bool = False
    feed_timeout_s: int = 600

    @property
    def keeps_features(self) -> bool:
        """Whether the run leaves its features table on the server, asked to or given one."""
        return self.keep_features or bool(self.features_table)


#: What ``--cv-by`` may be: one kind of fold (:data:`udfs.model_format.CV_EVALUATIONS`) or both,
#: the corpora left out first (the audio users bring is most like a corpus never heard, so those
#: predictions fit the temperature).
CV_CHOICES = {
    "speaker": ("speaker",),
    "corpus": ("corpus",),
    "corpus,speaker": ("corpus", "speaker"),
}


def cv_kinds(cv_by: str) -> tuple[str, ...]:
    """The cross-validations ``--cv-by`` names, in the order they run.  ConfigError unless one of
    :data:`CV_CHOICES`."""
    if cv_by not in CV_CHOICES:
        raise ConfigError(
            f"--cv-by must be speaker, corpus or both (corpus,speaker), got {cv_by!r}"
        )
    return CV_CHOICES[cv_by]


def choose_validation_speakers(
    speakers: list[str], *, fraction: float, explicit: list[str] | None = None
) -> list[str]:
    """Validation speakers: the explicit list (empty: none), or every k-th speaker in sorted
    order."""
    if len(speakers) < 2:
        raise TrainingDataError(
            "speaker-independent validation needs at least 2 speakers, the view has "
            f"{len(speakers)}"
        )
    if explicit is not None:
        unknown = sorted(set(explicit) - set(speakers))
        if unknown:
            raise TrainingDataError(
                f"validation speakers {unknown} are not in the view (speakers: {speakers})"
            )
        if set(explicit) == set(speakers):
            raise TrainingDataError(
                "every speaker is a validation speaker: nothing is left to train on"
            )
        return sorted(explicit)
    count = min(len(speakers) - 1, max(1, round(fraction * len(speakers))))
    ordered = sorted(speakers, key=lambda s: (len(s), s))
    step = len(ordered) / count
    return sorted({ordered[int(step * i + step / 2)] for i in range(count)})


def build_trainer_spark(settings: Settings, spark_defaults: dict[str, str], *, work_dir: Path):
    """The trainer's own Spark application: no Hive catalog, TFoS nodes on the bind address."""
    from server.spark import build_spark

    os.chdir(work_dir)  # TensorFlowOnSpark writes an executor_id file into the working directory
    # The local JVM and its Python workers inherit this process's environment; a cluster's
    # executors get spark.executorEnv.  Values already set win.
    malloc = {
        name: os.environ.setdefault(name, value) for name, value in TRAINER_MALLOC_ENV.items()
    }
    spark = build_spark(
        settings,
        spark_defaults,
        app_name="Emoticana trainer",
        catalog="in-memory",
        extra={
            "spark.python.daemon.module": TFOS_DAEMON_MODULE,
            "spark.task.maxFailures": "1",
            **{f"spark.executorEnv.{name}": value for name, value in malloc.items()},
        },
    )
    # Once per application: every TFCluster.run of it (each fold, the final model) reserves there.
    conf = spark.sparkContext.getConf()
    reserve_on(conf.get("spark.driver.host"), conf.get("spark.driver.bindAddress", None))
    return spark


def reserve_on(host: str, bind_address: str | None = None) -> None:
    """Make TensorFlowOnSpark's reservation server (on the driver) listen on one address only.

    By default it listens on every interface and advertises the address routed towards a
    public one (``reservation.Server``); the TF nodes then register over the external
    interface.  It advertises ``host``, the trainer's ``spark.driver.host`` (127.0.0.1 in the
    default set-up; a cluster's driver address otherwise), which the executors already reach,
    and listens on ``bind_address`` (``spark.driver.bindAddress``; ``host`` when None), on the
    ports of ``TFOS_SERVER_PORT`` as TensorFlowOnSpark does (any free port without it).
    """
    from tensorflowonspark import reservation

    address = bind_address or host
    os.environ[reservation.TFOS_SERVER_HOST] = host

    def start_listening_socket(server) -> socket.socket:
        failure = None
        for port in server.get_server_ports():
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((address, port))
                listener.listen(10)
                return listener
            except OSError as exc:
                listener.close()
                failure = exc
        raise TrainingError(
            f"TensorFlowOnSpark's reservation server cannot listen on {address} "
            f"(port {os.environ.get(reservation.TFOS_SERVER_PORT, 'any')}): {failure}"
        )

    reservation.Server.start_listening_socket = start_listening_socket


def corpus_mask(labels) -> tuple[int, ...]:
    """1 for each emotion (in label order) that a corpus has."""
    return tuple(int(name in labels) for name in EMOTIONS)


def train_on_features(
    spark,
    prepared: PreparedFeatures,
    options: TrainOptions,
    *,
    train_speakers: list[str],
    validation_speakers: list[str],
    output_dir: Path,
    test_speakers: list[str] | None = None,
    log=print,
) -> dict:
    """One TensorFlowOnSpark training run; the chief writes ``model.keras`` into ``output_dir``.

    With ``test_speakers``, the result also has ``test``: the figures on those speakers.
    """
    from pyspark.sql import functions as F
    from tensorflowonspark import TFCluster

    shape = DEFAULT_FEATURES.shape
    label_index = {name: i for i, name in enumerate(EMOTIONS)}
    corpus_names = sorted(prepared.corpora)
    corpus_index = {name: i for i, name in enumerate(corpus_names)}
    label_masks = tuple(corpus_mask(prepared.corpora[name]) for name in corpus_names)
    frame = spark.read.parquet(prepared.location).where(F.col("features").isNotNull())
    as_recorded = frame.where(F.col("condition") == "clean")
    validation = (
        as_recorded.where(F.col("speaker").isin(validation_speakers))
        .select("features", "label", "corpus")
        .collect()
    )
    training = frame.where(F.col("speaker").isin(train_speakers)).select(
        "features", "label", "corpus"
    )
    validation_x = voice_head.feature_matrices(validation)
    validation_y = np.array([label_index[r.label] for r in validation], dtype=np.int32)

    # Per-coefficient statistics of the training rows, computed by Spark.
    stats = (
        training.select(F.posexplode("features").alias("pos", "value"))
        .groupBy((F.col("pos") / shape[1]).cast("int").alias("coefficient"))
        .agg(F.avg("value").alias("mean"), F.var_pop("value").alias("variance"))
        .orderBy("coefficient")
        .collect()
    )
    counted = dict(training.groupBy("label").count().collect())
    class_counts = tuple(int(counted.get(name, 0)) for name in EMOTIONS)
    train_rows = sum(class_counts)
    class_priors = options.class_priors or recipe.CLASS_PRIORS
    if train_rows == 0 or (validation_speakers and len(validation_y) == 0):
        raise TrainingDataError(
            f"training needs rows on both sides of the speaker split (train {train_rows}, "
            f"validation {len(validation_y)})"
        )
    args = NodeArgs(
        output_dir=str(output_dir),
        input_shape=shape,
        n_classes=len(EMOTIONS),
        prosody_rows=DEFAULT_FEATURES.prosody_rows,
        train_rows=int(train_rows),
        validation_x=validation_x,
        validation_y=validation_y,
        label_masks=label_masks,
        feature_mean=np.array([s.mean for s in stats], dtype=np.float32),
        feature_variance=np.array([s.variance for s in stats], dtype=np.float32),
        epochs=options.epochs or recipe.EPOCHS,
        batch_size=options.batch_size or recipe.BATCH_SIZE,
        learning_rate=options.learning_rate or recipe.LEARNING_RATE,
        patience=options.patience or recipe.PATIENCE,
        selection=options.selection or recipe.SELECTION,
        inference_warps=tuple(
            recipe.INFERENCE_WARPS if options.inference_warps is None else options.inference_warps
        ),
        class_counts=class_counts if class_priors == "balanced" else (),
        hyperparams=run_hyperparams(options),
        seed=options.seed,
        nodes=options.nodes,
    )
    if args.batch_size % options.nodes:
        # Every node takes an equal share of each (global) batch: see training.node.
        raise ConfigError(
            f"--batch-size {args.batch_size} must be divisible by --nodes {options.nodes}"
        )
    # Four partitions per node interleave the rows (the features table holds them corpus by
    # corpus) and let Spark spread the feed over several nodes evenly.
    feed = training.rdd.map(
        lambda r: (
            np.asarray(r.features, dtype=np.float32).tobytes(),
            label_index[r.label],
            corpus_index[r.corpus],
        )
    ).repartition(max(options.nodes * 4, 4))
    if options.nodes == 1:
        # Every fed partition is a Spark task of its own, which waits for the node to take its
        # rows; one node reads them all in turn anyway, so the rows go as one partition per epoch.
        feed = feed.coalesce(1)
    validating = (
        f"validating on {len(validation_y)} clips from speakers {', '.join(validation_speakers)}"
        if validation_speakers
        else "no validation speakers"
    )
    log(f"training on {train_rows} clips from {len(train_speakers)} speakers; {validating}")
    started = time.monotonic()
    cluster = TFCluster.run(
        spark.sparkContext,
        main_fun,
        args.as_namespace(),
        options.nodes,
        0,
        tensorboard=False,
        input_mode=TFCluster.InputMode.SPARK,
        master_node="chief",
        reservation_timeout=300,
    )
    stopped = False
    try:
        # More epochs of data than can be used: the nodes stop the feed when they are done.
        feed_nodes(cluster, feed, epochs=feed_epochs(args), timeout_s=options.feed_timeout_s)
    except Exception as exc:
        raise TrainingError(f"TensorFlowOnSpark training failed: {_executor_reason(exc)}") from None
    except BaseException:
        # Stopped (Ctrl-C, SIGTERM): end the feed now, so that the shutdown below does not wait
        # for the remaining epochs; the nodes then see the end of their input and finish.
        stopped = True
        spark.sparkContext.cancelAllJobs()
        raise
    finally:
        try:
            stop_nodes(cluster)
        except Exception:
            # A node whose feed was cancelled mid-epoch may end in an error of its own; after a
            # stop that is expected, and the stop (not the node's error) is what propagates.
            if not stopped:
                raise
    wait_for_chief(output_dir, timeout_s=options.feed_timeout_s)
    seconds = time.monotonic() - started
    node_history = read_json(output_dir / NODE_HISTORY_FILE)
    model = load_keras_model_file(output_dir / MODEL_FILE)
    result = {}
    if len(validation_y):
        result["validation"] = evaluation_summary(
            validation_y, np.argmax(model.predict(validation_x, batch_size=64, verbose=0), axis=1)
        )
    if test_speakers:
        test = (
            as_recorded.where(F.col("speaker").isin(test_speakers))
            .select("features", "label", "speaker", "corpus", "digest")
            .collect()
        )
        test_x = voice_head.feature_matrices(test)
        test_y = np.array([label_index[r.label] for r in test], dtype=np.int32)
        probabilities = model.predict(test_x, batch_size=64, verbose=0)
        result["test"] = evaluation_summary(test_y, np.argmax(probabilities, axis=1))
        result["test_predictions"] = [
            {
                "speaker": r.speaker,
                "corpus": r.corpus,
                "clip_sha256": r.digest,
                "label": r.label,
                "probabilities": p.tolist(),
            }
            for r, p in zip(test, probabilities)
        ]
        # The same model's decisions under the other priors (paired: no retraining): the balanced
        # probabilities times the balancing factors are proportional to the training-prior ones.
        from training.network import balancing_factors

        factors = np.asarray(balancing_factors(class_counts))
        other = probabilities / factors if class_priors == "balanced" else probabilities * factors
        result["test_other_priors"] = evaluation_summary(test_y, np.argmax(other, axis=1))
    return {
        **result,
        "history": node_history["history"],
        "best_epoch": node_history["best_epoch"],
        "selection": node_history["selection"],
        "inference_warps": list(args.inference_warps),
        "class_priors": class_priors,
        "class_counts": list(class_counts),  # in label order (labels.json)
        "epochs_run": node_history["epochs_run"],
        "train_rows": int(train_rows),
        "validation_rows": int(len(validation_y)),
        "training_seconds": seconds,
        "nodes": options.nodes,
        "hyperparams": args.hyperparams,
        # weights and batch order; hyperparams' "seed" (the augmentation layers') is this unless
        # overridden
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "patience": args.patience,
    }


def stop_nodes(cluster) -> None:
    """End a TensorFlowOnSpark run whose feed has returned: ``TFCluster.shutdown`` without its
    fixed pause.

    In InputMode.SPARK every node trains in a process of its own and its Spark task ends as soon
    as that process starts, so once the feed has returned no job of the run is left; yet
    ``TFCluster.shutdown`` then polls for running jobs every 5 s, at least once, in every run
    (each fold, the final model).  What the chief still does after its feed is waited for by
    :func:`wait_for_chief` instead.  The rest are its steps: end every node's queues (a node's
    late error fails this job), report a node that failed to start, stop the reservation server.
    """
    from tensorflowonspark import TFCluster, TFSparkNode

    nodes = len(cluster.cluster_info)
    try:
        cluster.sc.parallelize(range(nodes), nodes).foreachPartition(
            TFSparkNode.shutdown(cluster.cluster_info, 0, cluster.queues)
        )
    except Exception as exc:  # a node's late error, as the feed reports one
        raise TrainingError(f"TensorFlowOnSpark training failed: {_executor_reason(exc)}") from None
    if "error" in TFCluster.tf_status:
        raise TrainingError(
            f"TensorFlowOnSpark nodes did not start: {TFCluster.tf_status['error']}"[:500]
        )
    cluster.server.stop()


def wait_for_chief(output_dir: Path, *, timeout_s: float, poll_s: float = 0.1) -> None:
    """Wait for the chief's last file of a run (:data:`training.node.NODE_HISTORY_FILE`).

    The feed returns once the nodes have taken every row fed to them, which, when they use the
    whole feed, is before the chief has trained on the last rows it holds and saved the model.
    A chief that fails meanwhile leaves :data:`training.node.NODE_ERROR_FILE`: TrainingError with
    its last error line at once, not at the timeout.
    """
    deadline = time.monotonic() + timeout_s
    while not (output_dir / NODE_HISTORY_FILE).exists():
        if (output_dir / NODE_ERROR_FILE).exists():
            reason = (output_dir / NODE_ERROR_FILE).read_text(encoding="utf-8", errors="replace")
            raise TrainingError(f"TensorFlowOnSpark training failed: {_executor_reason(reason)}")
        if time.monotonic() > deadline:
            raise TrainingError(
                f"the TensorFlowOnSpark chief wrote no model within {timeout_s} s of its feed's end"
            )
        time.sleep(poll_s)


_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


def feed_epochs(args: NodeArgs) -> int:
    """Passes over the data to feed: the epochs, plus what tf.data may read ahead and drop.

    Keras builds the distributed input iterator more than once at the start of
    ``fit``; rows a discarded iterator had buffered (shuffle buffer plus a few
    batches) are gone from the stream, so the feed carries enough spare passes.
    """
    read_ahead = 2 * (shuffle_buffer(args.train_rows) + 4 * args.batch_size * args.nodes)
    return args.epochs + 1 + -(-read_ahead // max(1, args.train_rows))


def _executor_reason(error: Exception | str) -> str:
    """The last ``SomeError: message`` line of an executor's traceback (an exception's text or a
    traceback itself), which names the cause."""
    text = str(error)
    if "Exception in worker:" in text:
        text = text[text.rindex("Exception in worker:") :]
    errors = [
        m for m in map(_ERROR_LINE.match, text.splitlines()) if m and m.group(1) != "Exception"
    ]
    if errors:
        return f"{errors[-1].group(1)}: {errors[-1].group(2)}"[:500]
    return text.strip().splitlines()[0][:500] if text.strip() else type(error).__name__


def run_hyperparams(options: TrainOptions) -> dict:
    """Every hyperparameter of the run, resolved here for the nodes and the manifest alike.

    The augmentation layers' ``seed`` is ``--seed`` unless ``--hyperparam seed=N`` says otherwise,
    so runs with another ``--seed`` also differ in their augmentation.
    """

    return recipe.resolve_hyperparams(
        {"seed": options.seed, **options.hyperparams}, prosody_rows=DEFAULT_FEATURES.prosody_rows
    )


def check_options(options: TrainOptions, cv_folds: int) -> None:
    """One line for options that cannot work, before any feature is computed.

    Training without validation speakers needs weights that do not depend on them, and figures from
    CV.
    """

    selection = options.selection or recipe.SELECTION
    if selection not in recipe.SELECTIONS:
        raise ConfigError(
            f"--selection must be one of {', '.join(recipe.SELECTIONS)}, got {selection!r}"
        )
    warps = recipe.INFERENCE_WARPS if options.inference_warps is None else options.inference_warps
    if any(not 0.5 <= factor <= 1.5 for factor in warps):
        raise ConfigError(
            f"--inference-warps are frequency scale factors near 1 (0.5-1.5), got {list(warps)}"
        )
    try:
        run_hyperparams(options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--hyperparam {exc}") from None
    priors = options.class_priors or recipe.CLASS_PRIORS
    if priors not in recipe.CLASS_PRIORS_CHOICES:
        raise ConfigError(
            f"--class-priors must be one of {', '.join(recipe.CLASS_PRIORS_CHOICES)}, got "
            f"{priors!r}"
        )
    if options.voice_head_for and options.encoder_head_for:
        raise ConfigError("give --voice-head-for or --encoder-head-for, not both")
    if options.encoder_head and (options.voice_head_for or options.encoder_head_for):
        given = "--voice-head-for" if options.voice_head_for else "--encoder-head-for"
        raise ConfigError(
            f"--encoder-head fuses the network this run trains, {given} trains none: give one"
        )
    kinds = cv_kinds(options.cv_by)
    if options.temporal_head and not (options.encoder_head or options.encoder_head_for):
        raise ConfigError(
            "--temporal-head goes beside the encoder head: give --encoder-head or "
            "--encoder-head-for"
        )
    if options.encoder_head and cv_folds < 2 and "corpus" not in kinds:
        raise ConfigError(
            "--encoder-head needs cross-validation (--cv-folds K or --cv-by corpus): the fused "
            "model's figures and temperature come from the folds' held-out predictions"
        )
    if options.encoder_head_for or options.encoder_head:
        speech_encoder.encoder_weights()  # one line now if the weights are not installed
    if kinds == ("corpus",) and cv_folds:
        raise ConfigError(
            "--cv-by corpus makes one fold per corpus: leave out --cv-folds, or add speaker folds "
            "with --cv-by corpus,speaker"
        )
    if len(kinds) > 1 and cv_folds < 2:
        raise ConfigError(
            f"--cv-by {options.cv_by} needs --cv-folds K (K >= 2) for its speaker folds"
        )
    if options.validation_speakers != []:
        return
    if selection == "best":
        raise ConfigError(
            "--validation-speakers none needs --selection last: the best epoch is chosen on "
            "validation speakers"
        )
    if cv_folds < 2 and "corpus" not in kinds:
        raise ConfigError(
            "--validation-speakers none needs --cv-folds K (K >= 2) or --cv-by corpus: without "
            "validation speakers the model's figures come from cross-validation"
        )


def chosen_weights(run: dict) -> str:
    """Which weights a run kept, for the console."""

    if run["selection"] == "last":
        chosen = f"last epoch of {run['epochs_run']} run"
    else:
        chosen = f"best epoch {run['best_epoch']} of {run['epochs_run']} run"
    if run["inference_warps"]:
        warps = ", ".join(map(str, run["inference_warps"]))
        chosen += f"; output averaged over the input and its warps {warps}"
    if run["class_priors"] == "balanced":
        chosen += (
            "; probabilities for equally likely emotions (training class frequencies divided out)"
        )
    return chosen


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def publish_model(
    models_dir: Path,
    options: TrainOptions,
    prepared: PreparedFeatures,
    run: dict,
    *,
    staged: Path,
    validation_speakers: list[str],
    train_speakers: list[str],
    cross_validations: Sequence[tuple[str, dict, list[dict]]] = (),
    voice: ProfileSet | None = None,
    log=print,
) -> Path:
    """Complete the staged directory and move it into place as the next version.

    ``cross_validations``: ``(kind, summary, predictions)`` of each cross-validation run
    (:func:`cross_validate`), in ``--cv-by`` order; the first one's predictions fit the
    temperature.  ``voice``: the features table's voice profiles, for the voice head and its
    held-out figures (:mod:`training.voice_head`).
    """
    manifest = {
        "name": options.name,
        "created_utc": utc_now(),
        "view": prepared.view,
        "view_rows": prepared.rows,
        "skipped_unreadable": prepared.unreadable,
        "label_counts": prepared.label_counts,
        "files_digest_sha256": prepared.files_digest,
        "train_speakers": train_speakers,
        "validation_speakers": validation_speakers,
        "trainer": "TensorFlowOnSpark InputMode.SPARK, MultiWorkerMirroredStrategy",
        **{
            k: run[k]
            for k in (
                "train_rows",
                "validation_rows",
                "training_seconds",
                "nodes",
                "hyperparams",
                "seed",
                "epochs",
                "batch_size",
                "learning_rate",
                "patience",
                "selection",
                "inference_warps",
                "class_priors",
                "class_counts",
                "best_epoch",
                "epochs_run",
            )
        },
        "feature_seconds": prepared.seconds,
    }
    metrics = {"validation": run["validation"]} if "validation" in run else {}
    for position, (kind, summary, _) in enumerate(cross_validations):
        metrics[cross_validation_key(kind, first=position == 0)] = summary
    cv_predictions = [{"cv_by": kind, **row} for kind, _, rows in cross_validations for row in rows]
    if cross_validations:
        kind, _, rows = cross_validations[0]
        calibration = calibrate(staged / MODEL_FILE, rows, prepared.corpora, fitted_on=kind)
        manifest["temperature"] = calibration["temperature"]
        metrics["calibration"] = calibration
        for _, summary, rows in cross_validations[1:]:
            # The final model answers with the temperature: so are its figures on these folds
            # (the first's are the calibration's "after", fitted on them).
            summary["by_corpus_after_temperature"] = figures_by_corpus(
                with_calibration(rows, calibration), prepared.corpora
            )
    if voice is not None:
        add_voice_head(
            staged,
            voice,
            prepared.corpora,
            train_speakers=train_speakers,
            calibration=metrics.get("calibration", {}),
            cross_validations=cross_validations,
            log=log,
        )
        manifest["voice_head"] = VOICE_HEAD_FILE
    (staged / VIEW_FILE).write_text(prepared.view_sql.strip() + "\n", encoding="utf-8")
    artifacts.write_reports(staged, metrics=metrics, history=run["history"])
    if cv_predictions:
        artifacts.write_cv_predictions(staged / CV_PREDICTIONS_FILE, cv_predictions)
    (staged / NODE_HISTORY_FILE).unlink(missing_ok=True)
    return publish_staged(models_dir, options.name, staged, manifest, DEFAULT_FEATURES)


def publish_staged(models_dir: Path, name: str, staged: Path, manifest: dict, features) -> Path:
    """Move a complete staged directory into place as the next version of ``name``, its
    descriptor written with that version."""
    (models_dir / name).mkdir(parents=True, exist_ok=True)
    # mkdtemp made the staging directory 0700; a published version is as readable as any
    # directory this user creates (the umask decides), e.g. by a server run by another account.
    staged.chmod(0o777 & ~current_umask())
    for _ in range(5):
        version = artifacts.next_version([models_dir, SHIPPED_MODELS_DIR], name)
        manifest["version"] = version
        artifacts.write_descriptor(staged, manifest=manifest, features=features)
        try:
            os.rename(staged, models_dir / name / str(version))
            return models_dir / name / str(version)
        except OSError:
            continue  # another trainer took that version meanwhile
    raise TrainingError(f"could not publish a new version of {name} under {models_dir}")


def add_voice_head(
    staged: Path,
    voice: ProfileSet,
    corpora: dict[str, list[str]],
    *,
    train_speakers: list[str],
    calibration: dict,
    cross_validations: Sequence[tuple[str, dict, list[dict]]],
    log=print,
) -> None:
    """Train the model's voice head on its training speakers into ``staged``, and add each
    cross-validation's grouped figures (:func:`training.voice_head.grouped_figures`) to its
    summary.  ``calibration``: ``metrics.json``'s (empty without a temperature); a corpus left
    out is measured with the calibration fitted without it."""
    started = time.monotonic()
    temperature = calibration.get("temperature", 1.0)
    held_out = {
        name: {"temperature": t, "slope": calibration.get("held_out_slopes", {}).get(name, 0.0)}
        for name, t in calibration.get("held_out_temperatures", {}).items()
    }
    for kind, summary, rows in cross_validations:
        log(f"cross-validation by {kind}, against each speaker's baseline:")
        summary.update(
            voice_head.grouped_figures(
                voice,
                [fold["test_speakers"] for fold in summary["folds"]],
                rows,
                corpora,
                calibration=calibration,
                corpus_calibrations=held_out if kind == "corpus" else None,
                log=log,
            )
        )
    voice_head.fit_voice_head(
        voice, np.isin(voice.speakers, train_speakers), corpora, temperature=temperature
    ).write(staged)
    log(f"voice head trained ({time.monotonic() - started:.0f}s)")


def encoder_states(spark, prepared: PreparedFeatures) -> ProfileSet:
    """The speech encoder's states of every row of the features table, computed by Spark."""
    return voice_head.load_profiles(spark, prepared.location, speech_encoder.encoder_states)


def encoder_states_and_frames(
    spark, prepared: PreparedFeatures, options: TrainOptions, work_dir: Path
):
    """The encoder's pooled states and, when ``options`` want the temporal head, every frame's
    states in the same row order (else None), from one pass of the encoder."""
    if not options.temporal_head:
        return encoder_states(spark, prepared), None
    from training import encoder_head

    directory = work_dir / "encoder-frames"
    directory.mkdir(exist_ok=True)
    return encoder_head.load_frames(spark, prepared.location, directory)


def publish_with_encoder_head(
    models_dir: Path,
    base: HeadlessModel,
    prepared: PreparedFeatures,
    states: ProfileSet,
    voice: ProfileSet,
    *,
    frames=None,
    log=print,
) -> Path:
    """Publish ``base``'s network fused with a head on the speech encoder's ``states``
    (:mod:`training.encoder_head`) as the next version of its name: cross-validation figures and
    predictions of the fusion on ``base``'s folds, the temperature fitted again on them, and the
    voice head trained again on the new scores (``voice``: the table's voice profiles)."""
    from training import encoder_head

    info = base.info
    reference = f"{info.name}/{info.version}"
    started = time.monotonic()
    cross_validations = []
    for kind, summary, rows in base.cross_validations:
        log(f"cross-validation by {kind}, the network with the encoder head:")
        fused = encoder_head.fused_predictions(
            states,
            [fold["test_speakers"] for fold in summary["folds"]],
            rows,
            prepared.corpora,
            frames=frames,
            log=log,
        )
        new_summary = encoder_head.fused_summary(kind, summary, fused, prepared.corpora)
        cross_validations.append((kind, new_summary, fused))
        figures = new_summary["by_corpus"]
        log(
            f"  UA over each corpus's own emotions: mean {figures['unweighted_accuracy_mean']:.3f}"
            " ("
            + ", ".join(
                f"{name} {c['unweighted_accuracy']:.3f}" for name, c in figures["corpora"].items()
            )
            + ")"
        )
    # The final head learns from the speakers the network learnt from, as the voice head does.
    trained = np.isin(states.speakers, info.manifest["train_speakers"])
    head = encoder_head.fit_head(
        states.profiles[trained], states.labels[trained], states.corpora[trained], prepared.corpora
    )
    statistics = encoder_head.state_statistics(states.profiles[trained])
    temporal = None
    if frames is not None:
        temporal = encoder_head.fit_temporal_head(
            frames,
            np.flatnonzero(trained),
            states.labels[trained],
            states.corpora[trained],
            prepared.corpora,
        )
    log(f"encoder head trained ({time.monotonic() - started:.0f}s)")

    def fill(staged: Path) -> dict:
        (staged / VOICE_HEAD_FILE).unlink(missing_ok=True)
        # The fused answers' confusion replaces the network's; the curves stay (its training).
        kind, summary, rows = cross_validations[0]
        artifacts.write_confusion(
            staged,
            np.asarray(summary["confusion"]),
            title=f"cross-validation by {kind}, with the encoder head: confusion",
        )
        calibration = fit_calibration_figures(rows, prepared.corpora, fitted_on=kind)
        # Where "far" begins for the final model (its calibrate layer holds the same).
        calibration["distance_reference"] = {
            "quantile": statistics["quantile"],
            "log_distance": statistics["log_reference"],
        }
        encoder_head.fused_model(
            info.path / MODEL_FILE, head, statistics, calibration, temporal=temporal
        ).save(staged / MODEL_FILE)
        metrics = {"calibration": calibration}
        for position, (kind, summary, rows) in enumerate(cross_validations):
            if position:
                summary["by_corpus_after_temperature"] = figures_by_corpus(
                    with_calibration(rows, calibration), prepared.corpora
                )
            metrics[cross_validation_key(kind, first=position == 0)] = summary
        add_voice_head(
            staged,
            voice,
            prepared.corpora,
            train_speakers=info.manifest["train_speakers"],
            calibration=calibration,
            cross_validations=cross_validations,
            log=log,
        )
        artifacts.write_json(staged / METRICS_FILE, metrics)
        artifacts.write_cv_predictions(
            staged / CV_PREDICTIONS_FILE,
            [{"cv_by": kind, **row} for kind, _, rows in cross_validations for row in rows],
        )
        return {
            "voice_head": VOICE_HEAD_FILE,
            "temperature": calibration["temperature"],
            "distance_slope": calibration["slope"],
            "speech_encoder": {
                "weights": speech_encoder.weights_source(),
                "fusion_weight": encoder_head.FUSION_WEIGHT,
                "temporal_head": temporal is not None,
            },
        }

    path = republish(models_dir, info, fill)
    log(f"model {info.name}/{path.name}: {reference}'s network with the speech encoder's head")
    return path


def republish(models_dir: Path, info: ModelInfo, fill) -> Path:
    """Publish a copy of the model version ``info`` as the next version of its name, after
    ``fill(staged)`` changed the copy and returned what to add to its manifest (which also
    names the version whose network it keeps)."""
    staged = staging_dir(models_dir)
    try:
        shutil.copytree(info.path, staged, dirs_exist_ok=True)
        # A model card describes one version: the new one's is written by hand.
        (staged / "MODEL_CARD.md").unlink(missing_ok=True)
        manifest = dict(info.manifest)
        manifest.update(fill(staged))
        manifest.update(created_utc=utc_now(), network_of=f"{info.name}/{info.version}")
        return publish_staged(models_dir, info.name, staged, manifest, info.features)
    except BaseException:
        discard(staged)
        raise


@dataclass(frozen=True)
class HeadlessModel:
    """A published model version to give a head (``--voice-head-for``, ``--encoder-head-for``),
    checked."""

    info: ModelInfo
    metrics: dict
    cross_validations: list[tuple[str, dict, list[dict]]]


def headless_model(models_dir: Path, reference: str, prepared: PreparedFeatures) -> HeadlessModel:
    """``reference`` with what a head added to it needs, or one line on what it lacks: trained on
    the view's clips, with its training speakers and cross-validation predictions."""
    from udfs.model_store import ModelStore

    info = ModelStore((str(models_dir), str(SHIPPED_MODELS_DIR)), DEFAULT_FEATURES).resolve(
        reference
    )
    if info.manifest.get("files_digest_sha256") != prepared.files_digest:
        raise TrainingDataError(
            f"{reference} was trained on other clips than view {prepared.view!r} has now "
            "(files digest differs): a head added to it must learn from the same clips"
        )
    metrics = read_json(info.path / METRICS_FILE) if (info.path / METRICS_FILE).is_file() else {}
    found = recorded_cross_validations(metrics) if isinstance(metrics, dict) else []
    if not found or not (info.path / CV_PREDICTIONS_FILE).is_file():
        raise TrainingDataError(
            f"{reference} has no cross-validation predictions ({CV_PREDICTIONS_FILE}): a head "
            "added to it is measured on its folds; train it with --cv-folds K or --cv-by corpus"
        )
    if not isinstance(info.manifest.get("train_speakers"), list):
        raise TrainingDataError(f"{reference}'s manifest does not list its training speakers")
    rows = read_cv_predictions(info.path / CV_PREDICTIONS_FILE)
    first = found[0]["by"]  # a file from before the cv_by column holds one cross-validation
    return HeadlessModel(
        info,
        metrics,
        [(cv["by"], cv, [r for r in rows if r.get("cv_by", first) == cv["by"]]) for cv in found],
    )


def publish_with_voice_head(
    models_dir: Path,
    base: HeadlessModel,
    prepared: PreparedFeatures,
    voice: ProfileSet,
    *,
    log=print,
) -> Path:
    """Publish ``base``'s network, temperature and figures again as the next version of its
    name, with a voice head trained on the same view's features and its cross-validations'
    grouped figures; the calibration a corpus never heard can expect is added if it lacks it."""
    info, metrics = base.info, base.metrics
    reference = f"{info.name}/{info.version}"
    calibration = metrics.get("calibration")
    kind, _, rows = base.cross_validations[0]
    if isinstance(calibration, dict) and "held_out" not in calibration:
        calibration.update(held_out_calibration(rows, prepared.corpora))

    def fill(staged: Path) -> dict:
        add_voice_head(
            staged,
            voice,
            prepared.corpora,
            train_speakers=info.manifest["train_speakers"],
            calibration=calibration if isinstance(calibration, dict) else {},
            cross_validations=base.cross_validations,
            log=log,
        )
        artifacts.write_json(staged / METRICS_FILE, metrics)
        return {"voice_head": VOICE_HEAD_FILE}

    path = republish(models_dir, info, fill)
    log(f"model {info.name}/{path.name}: {reference}'s network with a voice head")
    return path


def read_cv_predictions(path: Path) -> list[dict]:
    """The rows :func:`training.artifacts.write_cv_predictions` wrote (probabilities as floats)."""
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {
                **row,
                "probabilities": [float(row[name]) for name in EMOTIONS],
                "distance": float(row["distance"]) if row.get("distance") else None,
            }
            for row in csv.DictReader(handle)
        ]


def calibrate(
    model_file: Path, predictions: list[dict], corpora: dict[str, list[str]], *, fitted_on: str
) -> dict:
    """Fit a temperature on the cross-validation's held-out predictions and wrap the saved model
    in it; returns :func:`fit_calibration_figures`."""
    import keras

    from udfs.model_layers import Temperature

    calibration = fit_calibration_figures(predictions, corpora, fitted_on=fitted_on)
    model = load_keras_model_file(model_file)
    inputs = keras.Input(shape=model.input_shape[1:], name="mfcc")
    outputs = Temperature(calibration["temperature"], name="calibrate")(model(inputs))
    keras.Model(inputs, outputs, name="emoticana_calibrated").save(model_file)
    return calibration


def fit_calibration_figures(
    predictions: list[dict], corpora: dict[str, list[str]], *, fitted_on: str
) -> dict:
    """The calibration (:func:`training.calibration.fit_calibration`: a temperature, and a
    slope where the rows carry their encoder states' ``distance``) fitted on a cross-validation's
    held-out predictions, with their figures before and after.  ``fitted_on``: what that
    cross-validation held out (``corpus`` or ``speaker``)."""
    fitted = fitted_calibration(predictions)
    return {
        **fitted,
        "fitted_on": f"cross-validation predictions, {fitted_on} folds (held out of training)",
        "before": figures_by_corpus(predictions, corpora),
        "after": figures_by_corpus(with_calibration(predictions, fitted), corpora),
        **held_out_calibration(predictions, corpora),
    }


def fitted_calibration(predictions: list[dict]) -> dict:
    """:func:`training.calibration.fit_calibration` on rows of held-out predictions, each
    corpus one group."""
    from training.calibration import fit_calibration, row_distances

    return fit_calibration(
        np.array([row["probabilities"] for row in predictions]),
        np.array([EMOTIONS.index(row["label"]) for row in predictions]),
        np.array([row["corpus"] for row in predictions]),
        row_distances(predictions),
    )


def held_out_calibration(predictions: list[dict], corpora: dict[str, list[str]]) -> dict:
    """Each corpus's figures with a calibration fitted on the other corpora's predictions alone
    (``held_out``, and those temperatures and slopes): how calibrated the answers are on a
    corpus whose predictions the calibration never saw, where ``after`` is fitted on them too.
    Empty with fewer than two corpora."""
    names = sorted({row["corpus"] for row in predictions})
    if len(names) < 2:
        return {}
    scaled_rows, temperatures, slopes = [], {}, {}
    for name in names:
        fitted = fitted_calibration([row for row in predictions if row["corpus"] != name])
        temperatures[name], slopes[name] = fitted["temperature"], fitted["slope"]
        scaled_rows += with_calibration(
            [row for row in predictions if row["corpus"] == name], fitted
        )
    return {
        "held_out": figures_by_corpus(scaled_rows, corpora),
        "held_out_temperatures": temperatures,
        "held_out_slopes": slopes,
    }


def with_calibration(predictions: list[dict], calibration: dict) -> list[dict]:
    """``predictions`` with their probabilities as the model wrapped in ``calibration`` (its
    ``temperature`` and ``slope``) gives them."""
    from training.calibration import calibrated, row_distances

    if not predictions:
        return []
    probabilities = calibrated(
        np.array([row["probabilities"] for row in predictions]),
        calibration,
        row_distances(predictions),
    )
    return [{**row, "probabilities": p.tolist()} for row, p in zip(predictions, probabilities)]


def current_umask() -> int:
    """The process's file-creation mask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def staging_dir(models_dir: Path) -> Path:
    models_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=models_dir))


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def cross_validation_folds(speakers: list[str], folds: int) -> list[list[str]]:
    """Test speakers of each fold: every ``folds``-th speaker in sorted order."""
    if folds < 2 or folds > len(speakers):
        raise TrainingDataError(
            f"--cv-folds must be between 2 and the number of speakers ({len(speakers)}), got "
            f"{folds}"
        )
    ordered = sorted(speakers, key=lambda s: (len(s), s))
    return [ordered[k::folds] for k in range(folds)]


def corpus_folds(prepared: PreparedFeatures) -> list[list[str]]:
    """Leave one corpus out: each fold's test speakers are one corpus's."""
    if len(prepared.corpora) < 2:
        raise TrainingDataError(
            f"--cv-by corpus needs a view with a {CORPUS_COLUMN} column naming at least two "
            f"corpora; {prepared.view!r} has {len(prepared.corpora)}"
        )
    return [
        sorted(s for s, c in prepared.speaker_corpus.items() if c == corpus)
        for corpus in sorted(prepared.corpora)
    ]


def cross_validate(
    spark,
    prepared: PreparedFeatures,
    options: TrainOptions,
    *,
    by: str,
    folds: list[list[str]],
    work_dir: Path,
    log=print,
) -> tuple[dict, list[dict]]:
    """Cross-validation with the same trainer: UA on each fold's unseen speakers.

    ``folds`` are the test speakers of each fold (:func:`cross_validation_folds`,
    :func:`corpus_folds`), ``by`` what they hold out (``corpus`` or ``speaker``).  Returns the
    summary (``metrics.json``'s ``cross_validation``, with figures per corpus) and every test
    clip's prediction (:func:`training.artifacts.write_cv_predictions`' rows).
    """

    results, confusions, predictions = [], [], []
    # Each fold also scores its model under the other priors: the same model, so the pair is exact.
    other_priors = (
        "training" if (options.class_priors or recipe.CLASS_PRIORS) == "balanced" else "balanced"
    )
    other_key = f"with_{other_priors}_priors"
    for number, test_speakers in enumerate(folds, start=1):
        remaining = [s for s in prepared.speakers if s not in test_speakers]
        # Each fold is trained like the final model: without validation speakers if it has none.
        validation = (
            []
            if options.validation_speakers == []
            else choose_validation_speakers(remaining, fraction=options.validation_fraction)
        )
        train = [s for s in remaining if s not in validation]
        log(
            f"cross-validation by {by}, fold {number}/{len(folds)}: test speakers "
            f"{', '.join(test_speakers)}"
        )
        fold_dir = work_dir / f"{by}-fold-{number}"
        run = train_on_features(
            spark,
            prepared,
            options,
            train_speakers=train,
            validation_speakers=validation,
            test_speakers=test_speakers,
            output_dir=fold_dir,
            log=log,
        )
        test, other = run["test"], run["test_other_priors"]
        log(
            f"fold {number}: unseen-speaker UA {test['unweighted_accuracy']:.3f}  WA "
            f"{test['weighted_accuracy']:.3f}  "
            f"5-class UA {test['merged5_unweighted_accuracy']:.3f}  (UA with {other_priors} priors "
            f"{other['unweighted_accuracy']:.3f})  ({run['training_seconds']:.0f}s)"
        )
        results.append(
            {
                "test_speakers": test_speakers,
                "validation_speakers": validation,
                "best_epoch": run["best_epoch"],
                "selection": run["selection"],
                "training_seconds": run["training_seconds"],
                **{
                    k: test[k]
                    for k in (
                        "unweighted_accuracy",
                        "weighted_accuracy",
                        "merged5_unweighted_accuracy",
                        "merged5_weighted_accuracy",
                        "n",
                    )
                },
                "class_priors": run["class_priors"],
                other_key: {k: other[k] for k in ("unweighted_accuracy", "weighted_accuracy")},
            }
        )
        confusions.append(np.asarray(test["confusion"]))
        predictions.extend({"fold": number, **row} for row in run["test_predictions"])
        discard(fold_dir)
    # Every speaker is a test speaker exactly once: the pooled confusion covers the whole view.
    summary = {
        "by": by,
        "folds": results,
        "confusion": np.sum(confusions, axis=0).tolist(),
        "by_corpus": figures_by_corpus(predictions, prepared.corpora),
    }
    for key in (
        "unweighted_accuracy",
        "weighted_accuracy",
        "merged5_unweighted_accuracy",
        "merged5_weighted_accuracy",
    ):
        values = np.array([r[key] for r in results])
        summary[f"{key}_mean"] = float(values.mean())
        summary[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    others = np.array([r[other_key]["unweighted_accuracy"] for r in results])
    summary[f"unweighted_accuracy_{other_key}_mean"] = float(others.mean())
    for name, figures in summary["by_corpus"]["corpora"].items():
        log(
            f"  {name}: UA over its own emotions {figures['unweighted_accuracy']:.3f}, "
            f"calibration error {figures['expected_calibration_error']:.3f}"
        )
    log(
        f"cross-validation by {by}: UA {summary['unweighted_accuracy_mean']:.3f} ± "
        f"{summary['unweighted_accuracy_std']:.3f} over {len(folds)} folds"
        f" (UA {other_key.replace('_', ' ')} {others.mean():.3f})"
    )
    return summary, predictions


def run_training(
    settings: Settings,
    view: str,
    options: TrainOptions,
    *,
    models_dir: Path,
    cv_folds: int = 0,
    audio_column: str | None = None,
    label_column: str = "label",
    speaker_column: str = "speaker",
    log=print,
) -> Path:
    """The whole ``emoticana train``: features on the server, TFoS training, a new model version."""
    from server.preflight import check_conf_dir
    from server.thrift import client_options, connect
    from training.sources import drop_features, prepare_features

    check_model_name(options.name)
    check_options(options, cv_folds)
    models_dir = Path(models_dir).absolute()
    spark_defaults = check_conf_dir(settings.conf_dir)
    try:
        connection = connect(settings.host, settings.port, **client_options())
    except Exception as exc:
        raise TrainingError(
            f"cannot reach the Emoticana server at {settings.host}:{settings.port} (start it with "
            f"`make serve`): {exc}"
        ) from None
    started = time.monotonic()
    try:
        cursor = connection.cursor()
        log(f"computing features of view {view!r} on the server ...")
        prepared = prepare_features(
            cursor,
            view,
            audio_column=audio_column,
            label_column=label_column,
            speaker_column=speaker_column,
            reuse=options.features_table,
        )
        keep_table = False
        try:
            log(
                f"features: {prepared.usable_rows} clips from {len(prepared.speakers)} speakers in "
                f"{prepared.seconds:.1f}s"
                f" ({prepared.unreadable} unreadable clips skipped)"
            )
            log(
                "labels: " + ", ".join(f"{k} {v}" for k, v in sorted(prepared.label_counts.items()))
            )
            # Checked before any training work: a wrong model or view fails in one line now.
            base_reference = options.voice_head_for or options.encoder_head_for
            headless = (
                headless_model(models_dir, base_reference, prepared) if base_reference else None
            )
            if headless is not None and options.encoder_head_for:
                if "speech_encoder" in headless.info.manifest:
                    raise TrainingDataError(
                        f"{base_reference} already answers with the speech encoder: give the "
                        f"model whose network it fused ({headless.info.manifest.get('network_of')})"
                    )
            validation = choose_validation_speakers(
                prepared.speakers,
                fraction=options.validation_fraction,
                explicit=options.validation_speakers,
            )
            train = [s for s in prepared.speakers if s not in validation]
            # Before the trainer's Spark application starts: a view that cannot be split fails
            # without it.
            evaluations = [
                (kind, corpus_folds(prepared))
                if kind == "corpus"
                else (kind, cross_validation_folds(prepared.speakers, cv_folds))
                for kind in cv_kinds(options.cv_by)
                if kind == "corpus" or cv_folds
            ]
            work_dir = Path(tempfile.mkdtemp(prefix="emoticana-train-"))
            spark = build_trainer_spark(settings, spark_defaults, work_dir=work_dir)
            try:
                if not is_local_master(settings.master):
                    from server.spark import wait_for_executors

                    # TensorFlowOnSpark places one node per executor: all of them must be there
                    # first.
                    wait_for_executors(spark, minimum=options.nodes)
                if headless is not None and options.encoder_head_for:
                    states, frames = encoder_states_and_frames(spark, prepared, options, work_dir)
                    return publish_with_encoder_head(
                        models_dir,
                        headless,
                        prepared,
                        states,
                        voice_head.load_profiles(spark, prepared.location),
                        frames=frames,
                        log=log,
                    )
                if headless is not None:
                    return publish_with_voice_head(
                        models_dir,
                        headless,
                        prepared,
                        voice_head.load_profiles(spark, prepared.location),
                        log=log,
                    )
                cross_validations = [
                    (
                        kind,
                        *cross_validate(
                            spark,
                            prepared,
                            options,
                            by=kind,
                            folds=folds,
                            work_dir=work_dir,
                            log=log,
                        ),
                    )
                    for kind, folds in evaluations
                ]
                voice = voice_head.load_profiles(spark, prepared.location)
                staged = staging_dir(models_dir)
                try:
                    run = train_on_features(
                        spark,
                        prepared,
                        options,
                        train_speakers=train,
                        validation_speakers=validation,
                        output_dir=staged,
                        log=log,
                    )
                    path = publish_model(
                        models_dir,
                        options,
                        prepared,
                        run,
                        staged=staged,
                        validation_speakers=validation,
                        train_speakers=train,
                        cross_validations=cross_validations,
                        voice=voice,
                        log=log,
                    )
                except BaseException:
                    discard(staged)
                    raise
                network_path = path
                if options.encoder_head:
                    reference = f"{options.name}/{path.name}"
                    try:
                        # Only now: the encoder runs TensorFlow in Spark's Python workers, and a
                        # worker that has run it cannot become a TensorFlowOnSpark node (its
                        # threading is fixed).
                        states, frames = encoder_states_and_frames(
                            spark, prepared, options, work_dir
                        )
                        path = publish_with_encoder_head(
                            models_dir,
                            headless_model(models_dir, reference, prepared),
                            prepared,
                            states,
                            voice,
                            frames=frames,
                            log=log,
                        )
                    except Exception as exc:
                        if caused_by_interrupt(exc):
                            # A stop: it unwinds like any other (the features table goes), but
                            # the network it leaves is a whole published model.
                            log(
                                f"stopped while fusing: the network is published as "
                                f"{reference}; fuse it later with --encoder-head-for {reference}"
                            )
                            raise
                        # The network is published: its features stay, to fuse it later.
                        keep_table = True
                        raise TrainingError(
                            f"the network is published as {reference}, but fusing the speech "
                            f"encoder's head failed ({exc}); fuse it with --encoder-head-for "
                            f"{reference} --features-table {prepared.table}"
                        ) from exc
            finally:
                spark.stop()
                discard(work_dir)
        finally:
            if keep_table or options.keeps_features:
                log(f"features kept on the server: --features-table {prepared.table}")
            else:
                drop_features(cursor, prepared.table)
                log(f"features table {prepared.table} dropped")
    finally:
        connection.close()
    if "validation" in run:
        v = run["validation"]
        figures = (
            f"validation speakers {', '.join(validation)}: UA {v['unweighted_accuracy']:.3f}, WA "
            f"{v['weighted_accuracy']:.3f}, "
            f"5-class UA {v['merged5_unweighted_accuracy']:.3f}"
        )
    else:
        figures = f"no validation speakers (all {len(train)} trained on); " + "; ".join(
            f"cross-validation by {kind} UA {cv['unweighted_accuracy_mean']:.3f} ± "
            f"{cv['unweighted_accuracy_std']:.3f}"
            for kind, cv, _ in cross_validations
        )
    size_kb = sum(f.stat().st_size for f in network_path.iterdir()) / 1024
    fused = (
        f"; fused with the speech encoder's head as version {path.name}"
        if options.encoder_head
        else ""
    )
    log(
        f"\nmodel {options.name} version {network_path.name} written to {network_path} "
        f"({size_kb:.0f} KB){fused}\n"
        f"  {figures}\n"
        f"  {chosen_weights(run)}; TensorFlowOnSpark {run['training_seconds']:.0f}s; "
        f"total {time.monotonic() - started:.0f}s"
    )
    return path
