#!/usr/bin/env bash
# Run every benchmark in bench/ (each prints a table and writes bench/results/<name>.json).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh start >/dev/null
status=0
for script in bench/sink_publish.py bench/async_sink.py bench/api_ingest.py bench/api_write.py bench/workers_runtime.py \
              bench/workers_influxdb.py bench/workers_influxdb_metric.py bench/workers_prometheus.py \
              bench/workers_analytics.py bench/monitors_accuracy.py bench/monitors_cost.py \
              bench/cluster.py; do
  [ -f "$script" ] || continue
  echo "== $script"
  if ! "${PYTHON:-python3}" "$script"; then
    echo "!! $script failed" >&2
    status=1
  fi
done
exit $status
