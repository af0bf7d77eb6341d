"""Python daemon of the trainer's Spark application (``spark.python.daemon.module``).

TensorFlowOnSpark finds its own address by routing a UDP socket towards a
public address, so every TF node, reservation client and queue manager
advertises the machine's external interface.  Here the advertised address is
the executor's ``SPARK_LOCAL_IP`` (127.0.0.1 in the default set-up) instead.
The daemon forks every Python worker, so patching it once here covers them all.
"""

import os


def advertise_local_ip() -> None:
    host = os.environ.get("SPARK_LOCAL_IP")
    if host:
        from tensorflowonspark import util

        util.get_ip_address = lambda: host


advertise_local_ip()

if __name__ == "__main__":
    from pyspark.daemon import manager

    manager()
