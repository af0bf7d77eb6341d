"""Per-worker cache of loaded Keras models.

Module-level state survives in a reused Python worker (``spark.python.worker.reuse``),
while UDF closures are unpickled anew for every task; so the model is loaded once per
worker and version, here, and reused by every later batch and query.  The key holds
the file's modification time, so a model directory rewritten in place is reloaded.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from udfs.model_format import ModelInfo, load_keras_model

#: TensorFlow threads per Python worker; Spark already runs one worker per core.
ENV_TF_THREADS = "EMOTICANA_TF_THREADS"

#: Versions kept loaded per worker (a query may name versions explicitly).
MAX_MODELS = 3

_models: OrderedDict[tuple[str, int], object] = OrderedDict()
_lock = threading.Lock()
_configured = False


def _configure_tensorflow() -> None:
    global _configured
    if _configured:
        return
    import tensorflow as tf

    threads = int(os.environ.get(ENV_TF_THREADS, "1"))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already initialised in this process; keep its settings
    _configured = True


def get_model(info: ModelInfo):
    key = (str(info.model_file), os.stat(info.model_file).st_mtime_ns)
    with _lock:
        model = _models.get(key)
        if model is None:
            _configure_tensorflow()
            model = load_keras_model(info)
            _models[key] = model
            while len(_models) > MAX_MODELS:
                _models.popitem(last=False)
        _models.move_to_end(key)
        return model


_warmed = False


def warm(store) -> None:
    """Load the store's active model once per worker, whatever function runs first in it.

    Spark hands a query's batches to whichever idle Python worker it has, so every worker
    warms itself on its first batch; the server's start-up query makes sure that happens
    before the first user query.  A model that fails to load here is left for the
    emotion functions to report.

    The functions call this once their batch's own work has succeeded: a batch that raises (a
    user's error: a bad row in strict mode, an unknown model, a bad condition) ends its Python
    worker, and Spark runs the task again in a new one, up to four times; warming first would
    load TensorFlow and the model anew for every attempt of a query that fails anyway.
    """
    global _warmed
    if _warmed or store is None:
        return
    _warmed = True
    try:
        get_model(store.active())
    except Exception:
        pass  # reported with its reason by emotion()/emotion_scores(), which need the model
