"""Python daemon of the server's Spark application (``spark.python.daemon.module``).

The daemon forks every Python worker.  Spark ends a worker whose task raised (a user's error:
a bad row in strict mode, an unknown model) and runs the task again in a new one, up to four
times; a worker killed (out of memory, by an operator) is replaced the same way.  Imported
here once, before any fork, the UDF modules (NumPy, SciPy, Arrow, the audio decoders) are in
every new worker already, instead of being imported again by each.  TensorFlow is not: it is
not safe to fork once initialised, and each worker loads it with its model
(``udfs.model_cache``).
"""

import udfs.inference  # noqa: F401
import udfs.spark_udfs  # noqa: F401

if __name__ == "__main__":
    from pyspark.daemon import manager

    manager()
