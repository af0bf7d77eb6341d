#!/bin/sh
# Entry point of every Emoticana container: wait for the services a role depends on, then
# exec it, so that it runs as PID 1's replacement and docker stop's SIGTERM reaches it.
#   server   the Thrift/JDBC server (emoticana serve), after the metastore database and the master
#   master   Spark standalone master (pyspark's launcher classes)
#   worker   Spark standalone worker, after the master
set -eu

SPARK_HOME=$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export SPARK_HOME
WAIT_TIMEOUT_S=${WAIT_TIMEOUT_S:-120}

# wait_for HOST PORT: until a TCP connection succeeds, at most WAIT_TIMEOUT_S seconds.
wait_for() {
  python - "$1" "$2" "$WAIT_TIMEOUT_S" <<'PY'
import socket, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while True:
    try:
        socket.create_connection((host, port), timeout=2).close()
        break
    except OSError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"emoticana-entrypoint: {host}:{port} not reachable after {timeout:.0f}s: {exc}")
        time.sleep(1)
PY
}

role=${1:-server}
[ "$#" -gt 0 ] && shift

case "$role" in
  master)
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host "$(hostname)" --port 7077 --webui-port 8080 "$@"
    ;;
  worker)
    wait_for "${SPARK_MASTER_HOST:-spark-master}" 7077
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host "$(hostname)" --webui-port 8081 --cores "${SPARK_WORKER_CORES:-1}" --memory "${SPARK_WORKER_MEMORY:-2g}" \
      "spark://${SPARK_MASTER_HOST:-spark-master}:7077" "$@"
    ;;
  server)
    : "${EMOTICANA_METASTORE_PASSWORD:?EMOTICANA_METASTORE_PASSWORD must be set}"
    wait_for "${METASTORE_DB_HOST:-postgres}" 5432
    wait_for "${SPARK_MASTER_HOST:-spark-master}" 7077
    # Every address is the container's own name: executors call the driver back on it,
    # and docker-compose publishes the ports to the host on 127.0.0.1 only.
    exec emoticana serve --host "$(hostname)" "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
