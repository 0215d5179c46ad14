#!/usr/bin/env bash
# Run the whole system locally, without Docker: services, topology, emergency API, the workers whose
# destinations are reachable, a monitor probing the API, and a demo producer.
#   scripts/run.sh          run in the foreground; Ctrl-C stops everything cleanly
#   DETACH=1 scripts/run.sh start in the background; `scripts/run.sh stop` (make stop) stops it
# Python: $PYTHON, by default the virtual environment .venv (created and installed into when missing).
# The API uses the keys file every `eventsink keys` command uses: EVENTSINK_API_KEYS_FILE, by default
# ~/.config/eventsink/api_keys.json. Worker metrics listen on 127.0.0.1 (EVENTSINK_RUN_METRICS_ADDRESS).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="$PWD/.run"
API_PORT="${EVENTSINK_RUN_API_PORT:-8000}"
METRICS_ADDRESS="${EVENTSINK_RUN_METRICS_ADDRESS:-127.0.0.1}"
PYTHON="${PYTHON:-.venv/bin/python}"

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

# 1. what is missing gets installed (into .venv); RabbitMQ and InfluxDB get started
if [ "$PYTHON" = ".venv/bin/python" ]; then
  scripts/venv.sh python3 .venv
  PYTHON="$PWD/.venv/bin/python"
  export PATH="$PWD/.venv/bin:$PATH"
elif [[ "$PYTHON" == */* ]]; then  # another environment: its own eventsink script comes first too
  PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"
  export PATH="$(dirname "$PYTHON"):$PATH"
fi
if ! (cd / && "$PYTHON" -c "import sink_lib, emergency_api, workers, monitors, flasgger, influxdb_client, pymongo") \
     2>/dev/null || ! command -v eventsink >/dev/null; then
  echo "installing EventSink with its extras: $PYTHON -m pip install -e '.[all]'"
  "$PYTHON" -m pip install -q -e '.[all]'
fi
scripts/services.sh start
stop_all >/dev/null 2>&1 || true
mkdir -p "$RUN/pids" "$RUN/logs" "$RUN/spool"

export EVENTSINK_SPOOL_DIR="$RUN/spool"
export EVENTSINK_API_SWAGGER_UI="${EVENTSINK_API_SWAGGER_UI:-true}"  # a local development run: the UI is useful here
export EVENTSINK_PROMETHEUS_STATE_DIR="$RUN/prometheus"
export EVENTSINK_SOURCE="/demo/producer"
KEYS_FILE="${EVENTSINK_API_KEYS_FILE:-$HOME/.config/eventsink/api_keys.json}"

start() {  # start NAME COMMAND... : background process with its log and pid file
  local name=$1; shift
  "$@" >"$RUN/logs/$name.log" 2>&1 &
  echo $! >"$RUN/pids/$name"
  echo "  started $name (pid $!, log .run/logs/$name.log)"
}

# 2. the monitor's key, in the keys file shared with `eventsink keys` (one name per checkout); the
#    topology is declared below, for the workers that run: an unconsumed queue only grows
MONITOR_KEY_NAME="monitor-local-$(printf %s "$PWD" | cksum | cut -d' ' -f1)"
if [ ! -s "$RUN/monitor.key" ] || ! eventsink keys list | grep -qw -- "$MONITOR_KEY_NAME"; then
  eventsink keys revoke "$MONITOR_KEY_NAME" >/dev/null 2>&1 || true
  eventsink keys create --name "$MONITOR_KEY_NAME" --scope 'health.*' | tail -n 1 >"$RUN/monitor.key"
fi
chmod 600 "$RUN/monitor.key"

# 3. the emergency API
if (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then
  echo "port $API_PORT is taken (another make run?); stop it, or choose another: EVENTSINK_RUN_API_PORT=8001 make run" >&2
  exit 1
fi
echo "starting:"
start api eventsink api --bind "127.0.0.1:$API_PORT"
for _ in $(seq 1 300); do curl -fsS -o /dev/null "http://127.0.0.1:$API_PORT/healthz" 2>/dev/null && break; sleep 0.1; done
if ! curl -fsS -o /dev/null "http://127.0.0.1:$API_PORT/healthz" 2>/dev/null; then
  echo "the API did not come up on 127.0.0.1:$API_PORT; its log (.run/logs/api.log) ends:" >&2
  tail -n 20 "$RUN/logs/api.log" >&2
  stop_all
  exit 1
fi

# 4. workers whose destinations are reachable; their queues are declared first
enabled=(prometheus)
influx_url="${EVENTSINK_INFLUXDB_URL:-http://127.0.0.1:8086}"
if curl -fsS -o /dev/null "$influx_url/ping"; then
  enabled+=(influxdb)
else
  echo "  worker influxdb: off (no InfluxDB at $influx_url)"
fi
mongo_url="${EVENTSINK_MONGODB_URL:-mongodb://localhost:27017}"
if "$PYTHON" -c "import pymongo,sys; pymongo.MongoClient('$mongo_url', serverSelectionTimeoutMS=1000).admin.command('ping')" 2>/dev/null; then
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
  env "EVENTSINK_${upper}_METRICS_PORT=$port" "EVENTSINK_${upper}_METRICS_ADDRESS=$METRICS_ADDRESS" \
    "EVENTSINK_PROMETHEUS_ADDRESS=$METRICS_ADDRESS" bash -c "exec eventsink worker run $worker" \
    >"$RUN/logs/worker-$worker.log" 2>&1 &
  echo $! >"$RUN/pids/worker-$worker"
  echo "  started worker $worker (pid $!, metrics http://$METRICS_ADDRESS:$port/metrics, log .run/logs/worker-$worker.log)"
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
start demo-producer "$PYTHON" scripts/demo_producer.py --rate 5

if [ "$PYTHON" = "$PWD/.venv/bin/python" ]; then
  cli="source .venv/bin/activate     (then: eventsink status, eventsink dead list influxdb)"
else
  cli="eventsink status, eventsink dead list influxdb   (with $PYTHON's scripts on PATH)"
fi
cat <<INFO

EventSink is running. Where to look:
  Swagger UI         http://127.0.0.1:$API_PORT/apidocs/
  API metrics        http://127.0.0.1:$API_PORT/metrics
  worker metrics     http://$METRICS_ADDRESS:9101/metrics and up, one port per worker (listed above)
  storage gauges     http://$METRICS_ADDRESS:9108/metrics (prometheus worker: files/bytes stored, events by type)
  logs               .run/logs/
  the CLI            $cli
  API keys           eventsink keys create --name NAME --scope 'health.*'   (file $KEYS_FILE, read by this API)
  post an event      curl -H "X-API-Key: \$(cat .run/monitor.key)" -H 'Content-Type: application/json' \\
                       -d '{"type":"health.status","data":{"service":"demo","state":"up"}}' http://127.0.0.1:$API_PORT/api/v1/events
  InfluxDB           curl -sG $influx_url/query -H 'Accept: application/csv' --data-urlencode db=${EVENTSINK_INFLUXDB_DATABASE:-eventsink} \\
                       --data-urlencode "q=SELECT id, service, state, source FROM health WHERE type = 'health.status' ORDER BY time DESC LIMIT 5"
  stop               make stop
INFO

if [ "${DETACH:-0}" = "1" ]; then
  echo "detached; stop everything with: make stop"
  exit 0
fi
echo "Ctrl-C stops everything."
trap 'echo; stop_all; exit 0' INT TERM
while true; do sleep 1; done
