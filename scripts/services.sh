#!/usr/bin/env bash
# Install (if missing) and start the local services EventSink uses: RabbitMQ and InfluxDB 1.x.
# Prometheus and the blackbox exporter are installed too (tests and benchmarks start their own), and
# Redis, the shared rate-limit store the API's tests use.
# Usage: scripts/services.sh install | start | status
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
APT_PACKAGES=(rabbitmq-server influxdb prometheus prometheus-blackbox-exporter wrk nginx-light redis-server)

have() { command -v "$1" >/dev/null 2>&1; }

install() {
  local missing=()
  have rabbitmq-server || missing+=(rabbitmq-server)
  have influxd || missing+=(influxdb)
  have prometheus || missing+=(prometheus)
  have prometheus-blackbox-exporter || missing+=(prometheus-blackbox-exporter)
  have wrk || missing+=(wrk)
  # the API's front in tests/deploy/test_nginx_front.py (started by the test, not here)
  have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  have redis-server || missing+=(redis-server)
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $what" >&2
  return 1
}

rabbitmq_up() { python3 - <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

influxdb_up() { curl -fsS -o /dev/null "http://127.0.0.1:8086/ping"; }

redis_up() { python3 -c "import socket; socket.create_connection(('127.0.0.1', 6379), timeout=1).close()"; }

enable_plugin() {  # enable_plugin NAME WHAT: enable a RabbitMQ plugin in the running broker, saying so
  local name=$1 what=$2
  rabbitmq-plugins is_enabled "$name" >/dev/null 2>&1 && return 0
  echo "enabling the RabbitMQ plugin $name in the running broker ($what; undo: rabbitmq-plugins disable $name)"
  rabbitmq-plugins enable "$name" >/dev/null
}

start() {
  if ! rabbitmq_up; then
    echo "starting RabbitMQ"
    rabbitmq-server -detached || true
    wait_for 120 "RabbitMQ on :5672" rabbitmq_up
    rabbitmqctl await_startup >/dev/null 2>&1 || true
  fi
  # a node left stopped by an interrupted test run: start its application again
  rabbitmqctl start_app >/dev/null 2>&1 || true
  # per-queue depth, consumers and dead letters for Prometheus/Grafana on :15692 (online, idempotent)
  enable_plugin rabbitmq_prometheus "queue metrics for Prometheus on :15692"
  # the management API on :15672 lets `eventsink status` list other queues bound to the exchange
  enable_plugin rabbitmq_management "the management API on :15672, read by eventsink status"
  if ! influxdb_up; then
    echo "starting InfluxDB"
    mkdir -p /var/lib/influxdb /var/log
    INFLUXDB_REPORTING_DISABLED=true INFLUXDB_HTTP_LOG_ENABLED=false \
      nohup influxd -config /etc/influxdb/influxdb.conf >/var/log/influxd-eventsink.log 2>&1 &
    wait_for 60 "InfluxDB on :8086" influxdb_up
  fi
  # Redis backs the shared rate-limit store test of the API
  if ! redis_up; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_for 30 "Redis on :6379" redis_up
  fi
  echo "RabbitMQ: up (localhost:5672)  InfluxDB: up (http://127.0.0.1:8086)"
}

status() {
  if rabbitmq_up; then echo "RabbitMQ: up"; else echo "RabbitMQ: down"; fi
  if influxdb_up; then echo "InfluxDB: up"; else echo "InfluxDB: down"; fi
}

case "${1:-start}" in
  install) install ;;
  start) install; start ;;
  status) status ;;
  *) echo "usage: $0 install|start|status" >&2; exit 2 ;;
esac
