#!/usr/bin/env bash
# Start a Spark Connect server for marketing_assets (MARKETING_ENGINE=spark, MARKETING_SPARK_REMOTE=sc://<host>:<port>).
#
#   deploy/spark/start-connect-server.sh [--master spark://head:7077 | yarn | k8s://… | local[4]] [--port 15002] [more spark-submit options]
#
# Uses the Spark of the installed pyspark (pip install -e '.[spark]') unless SPARK_HOME points at a cluster's own
# Spark 4.x. The server's Python workers run the project's UDFs (DuckDB's Jaro-Winkler), so the project must be
# importable by the executors' Python: PYSPARK_PYTHON (default: this venv's python) on a single host, or the same
# venv on every node / shipped with --archives (see deploy/README.md). Stop it with the matching stop-connect-server.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
MASTER="local[*]"
PORT=15002
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --master) MASTER="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    *) EXTRA+=("$1"); shift ;;
  esac
done
export SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent)')}"
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$(realpath "$PY")}"
export SPARK_LOG_DIR="${SPARK_LOG_DIR:-data/spark-connect/logs}" SPARK_PID_DIR="${SPARK_PID_DIR:-data/spark-connect}"
mkdir -p "$SPARK_LOG_DIR" "$SPARK_PID_DIR"
# The session settings every run relies on (one definition: marketing_assets.lib.dialect.SPARK_CONF). Clients set
# them too; on the server they are also the defaults of any other client (a notebook) reading the same tables.
mapfile -t CONF < <("$PY" -c 'from marketing_assets.lib.dialect import SPARK_CONF
for k, v in SPARK_CONF.items(): print(f"--conf\n{k}={v}")')
exec bash "$SPARK_HOME/sbin/start-connect-server.sh" --master "$MASTER" \
  --conf "spark.connect.grpc.binding.port=$PORT" "${CONF[@]}" "${EXTRA[@]}"
