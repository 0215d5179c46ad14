#!/usr/bin/env bash
# Run the whole system locally, without Docker: services, topology, emergency API, the workers whose
# destinations are reachable, a monitor probing the API, and a demo producer.
#   scripts/run.sh          run in the foreground; Ctrl-C stops everything cleanly
#   DETACH=1 scripts/run.sh start in the background; `scripts/run.sh stop` (make stop) stops it
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="$PWD/.run"
API_PORT="${EVENTSINK_RUN_API_PORT:-8000}"

stop_all() {
  [ -d "$RUN/pids" ] || return 0
  for pidfile in "$RUN"/pids/*; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null && echo "stopping $(basename "$pidfile") ($pid)"
  done
  for pidfile in "$RUN"/pids/*; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  echo "stopped"
}

if [ "${1:-}" = "stop" ]; then stop_all; exit 0; fi

# 1. what is missing gets installed; RabbitMQ and InfluxDB get started
python3 -c "import sink_lib, emergency_api, workers, monitors, flasgger, influxdb_client" 2>/dev/null \
  || python3 -m pip install -q -e '.[all]'
scripts/services.sh start
stop_all >/dev/null 2>&1 || true
mkdir -p "$RUN/pids" "$RUN/logs" "$RUN/spool"

export EVENTSINK_SPOOL_DIR="$RUN/spool"
export EVENTSINK_API_KEYS_FILE="$RUN/keys.json"
export EVENTSINK_API_SWAGGER_UI="${EVENTSINK_API_SWAGGER_UI:-true}"  # a local development run: the UI is useful here
export EVENTSINK_PROMETHEUS_STATE_DIR="$RUN/prometheus"
export EVENTSINK_SOURCE="/demo/producer"

start() {  # start NAME COMMAND... : background process with its log and pid file
  local name=$1; shift
  "$@" >"$RUN/logs/$name.log" 2>&1 &
  echo $! >"$RUN/pids/$name"
  echo "  started $name (pid $!, log .run/logs/$name.log)"
}

# 2. keys (the topology is declared below, for the workers that run: an unconsumed queue only grows)
if [ ! -s "$RUN/monitor.key" ]; then
  eventsink keys create --name monitor-local --scope 'health.*' | tail -n 1 >"$RUN/monitor.key"
fi
chmod 600 "$RUN/monitor.key"

# 3. the emergency API
echo "starting:"
start api eventsink api --bind "127.0.0.1:$API_PORT"
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$API_PORT/healthz" 2>/dev/null && break; sleep 0.1; done

# 4. workers whose destinations are reachable; their queues are declared first
enabled=(prometheus)
influx_url="${EVENTSINK_INFLUXDB_URL:-http://127.0.0.1:8086}"
if curl -fsS -o /dev/null "$influx_url/ping"; then
  enabled+=(influxdb)
else
  echo "  worker influxdb: off (no InfluxDB at $influx_url)"
fi
mongo_url="${EVENTSINK_MONGODB_URL:-mongodb://localhost:27017}"
if python3 -c "import pymongo,sys; pymongo.MongoClient('$mongo_url', serverSelectionTimeoutMS=1000).admin.command('ping')" 2>/dev/null; then
  enabled+=(mongodb)
else
  echo "  worker mongodb: off (no MongoDB at $mongo_url)"
fi
if [ -n "${EVENTSINK_AMPLITUDE_API_KEY:-}" ]; then
  enabled+=(amplitude)
else
  echo "  worker amplitude: off (EVENTSINK_AMPLITUDE_API_KEY not set)"
fi
if [ -n "${EVENTSINK_GOOGLE_ANALYTICS_MEASUREMENT_ID:-}" ] && [ -n "${EVENTSINK_GOOGLE_ANALYTICS_API_SECRET:-}" ]; then
  enabled+=(google_analytics)
else
  echo "  worker google_analytics: off (EVENTSINK_GOOGLE_ANALYTICS_MEASUREMENT_ID/_API_SECRET not set)"
fi
eventsink topology declare $(printf -- '--worker %s ' "${enabled[@]}") >/dev/null
echo "  topology declared: exchange events, queues of ${enabled[*]}"
port=9101
for worker in "${enabled[@]}"; do
  upper=$(echo "$worker" | tr '[:lower:]' '[:upper:]')
  env "EVENTSINK_${upper}_METRICS_PORT=$port" bash -c "exec eventsink worker run $worker" \
    >"$RUN/logs/worker-$worker.log" 2>&1 &
  echo $! >"$RUN/pids/worker-$worker"
  echo "  started worker $worker (pid $!, metrics http://127.0.0.1:$port/metrics, log .run/logs/worker-$worker.log)"
  port=$((port + 1))
done

# 5. a monitor probing the API itself, and a demo producer
cat >"$RUN/monitor.toml" <<TOML
region = "local"
api_url = "http://127.0.0.1:$API_PORT"
api_key_file = "$RUN/monitor.key"
spool_dir = "$RUN/monitor-spool"
heartbeat_s = 60

[[targets]]
name = "emergency-api"
kind = "http"
url = "http://127.0.0.1:$API_PORT/healthz"
interval_s = 10
timeout_s = 5

[[targets]]
name = "rabbitmq"
kind = "tcp"
host = "127.0.0.1"
port = 5672
interval_s = 15
TOML
start monitor eventsink monitor --config "$RUN/monitor.toml"
start demo-producer python3 scripts/demo_producer.py --rate 5

cat <<INFO

EventSink is running. Where to look:
  Swagger UI         http://127.0.0.1:$API_PORT/apidocs/
  API metrics        http://127.0.0.1:$API_PORT/metrics
  worker metrics     http://127.0.0.1:9101/metrics and up, one port per worker (listed above)
  storage gauges     http://127.0.0.1:9108/metrics (prometheus worker: files/bytes stored, events by type)
  queues             eventsink status        dead letters: eventsink dead list influxdb
  InfluxDB           influx -database eventsink -execute 'SHOW MEASUREMENTS'
  post an event      curl -H "X-API-Key: \$(cat .run/monitor.key)" -H 'Content-Type: application/json' \\
                       -d '{"type":"health.status","data":{"service":"demo","state":"up"}}' http://127.0.0.1:$API_PORT/api/v1/events
  logs               .run/logs/
INFO

if [ "${DETACH:-0}" = "1" ]; then
  echo "detached; stop with: make stop"
  exit 0
fi
echo "Ctrl-C stops everything."
trap 'echo; stop_all; exit 0' INT TERM
while true; do sleep 1; done
