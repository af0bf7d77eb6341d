"""Feeding TensorFlowOnSpark's nodes (InputMode.SPARK) without its idle wait per partition.

``TFCluster.train`` puts each Spark partition into its executor's node queue and then checks
once a second whether the node has taken every row, so each partition costs at least a second
however few rows it holds, and a run feeds many partitions (four per node and epoch with
several nodes, plus the passes tf.data reads ahead and drops).

The steps are TensorFlowOnSpark's own (``TFSparkNode.train``), with its queues, states and
messages; only the waiting differs: a partition is done as soon as the node has taken its
last row, and a node's error is looked for every :data:`POLL_S`.
"""

from __future__ import annotations

#: How often a feeding task looks for a node's error while the node takes its rows, seconds.
POLL_S = 0.05


def feed(cluster, rdd, *, epochs: int, timeout_s: float) -> None:
    """``cluster.train(rdd, num_epochs=epochs, feed_timeout=timeout_s)``, each partition done
    as soon as its rows are taken.

    A node that has had enough (``DataFeed.terminate``) sets its manager's state to
    terminating; the partitions still to come are then read and dropped.  A node's error fails
    the feed with ``Exception in worker:`` and the node's traceback, as TensorFlowOnSpark's does.
    """
    rdd.context.union([rdd] * epochs).foreachPartition(
        _feed_partition(cluster.cluster_info, timeout_s)
    )


def _feed_partition(cluster_info, timeout_s: float):
    def feed_rows(rows) -> None:
        import logging
        import threading
        import time

        from tensorflowonspark import TFSparkNode, util

        log = logging.getLogger(__name__)
        manager = TFSparkNode._get_manager(
            cluster_info, util.get_ip_address(), util.read_executor_id()
        )
        try:
            queue, errors = manager.get_queue("input"), manager.get_queue("error")
        except (AttributeError, KeyError):
            raise RuntimeError(
                "Queue not found on this node, check for exceptions on other nodes"
            ) from None
        if str(manager.get("state")) == "'terminating'":
            log.info(
                "Skipped %d items of a partition: the node is terminating", sum(1 for _ in rows)
            )
            return
        log.info("Feeding partition into the input queue")
        count = 0
        for row in rows:
            queue.put(row, block=True)
            count += 1
        taken = threading.Thread(target=queue.join, daemon=True)
        taken.start()
        deadline = time.monotonic() + timeout_s
        while True:
            taken.join(POLL_S)
            if not taken.is_alive():
                break
            if not errors.empty():
                error = errors.get()
                errors.put(error)  # for a retried task and the shutdown, as TensorFlowOnSpark does
                raise RuntimeError("Exception in worker:\n" + error)
            if time.monotonic() > deadline:
                raise TimeoutError("Timeout while feeding partition")
        log.info("Processed %d items in partition", count)

    return feed_rows
