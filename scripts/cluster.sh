#!/usr/bin/env bash
# A 3-node RabbitMQ cluster beside the default broker, for failover tests and benchmarks.
#
#   scripts/cluster.sh start | stop | node-stop N | node-start N | status | urls
#
# Node N (1..3) is esN@localhost, AMQP on 127.0.0.1:568N, Erlang distribution on 2568N, Prometheus
# metrics on 1578N; its data and logs live under $EVENTSINK_CLUSTER_DIR (default /tmp/eventsink-cluster).
# The nodes share the Erlang cookie of the user they run as (rabbitmq when started by root), and run
# with cluster_partition_handling = pause_minority. The default broker (rabbit@localhost:5672) is
# never touched. `start` returns once the three nodes are running as one cluster.
set -euo pipefail

NODES=(1 2 3)
BASE=${EVENTSINK_CLUSTER_DIR:-/tmp/eventsink-cluster}
RMQ_BIN=/usr/lib/rabbitmq/bin
[ -x "$RMQ_BIN/rabbitmq-server" ] || RMQ_BIN=$(dirname "$(command -v rabbitmq-server || echo /usr/sbin/x)")
WAIT_S=${EVENTSINK_CLUSTER_WAIT_S:-180}

node_name() { echo "es$1@localhost"; }
amqp_port() { echo $((5680 + $1)); }

die() { echo "cluster.sh: $*" >&2; exit 1; }

check_node() {
  case "${1:-}" in 1|2|3) ;; *) die "node must be 1, 2 or 3 (got '${1:-}')" ;; esac
}

# Run a RabbitMQ command for node N with that node's environment; as the rabbitmq user when root.
rmq() {
  local n=$1 cmd=$2; shift 2
  local dir="$BASE/es$n"
  local envs=(
    "RABBITMQ_NODENAME=$(node_name "$n")"
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
    "RABBITMQ_NODE_PORT=$(amqp_port "$n")"
    "RABBITMQ_DIST_PORT=$((25680 + n))"
    "RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf"
    "RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf"
    "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins"
    "RABBITMQ_MNESIA_BASE=$dir/mnesia"
    "RABBITMQ_LOG_BASE=$dir/log"
    "RABBITMQ_PID_FILE=$dir/pid"
    "RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config"
    "ERL_EPMD_ADDRESS=127.0.0.1"
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
  )
  if [ "$(id -u)" -eq 0 ] && id -u rabbitmq >/dev/null 2>&1; then
    runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq "${envs[@]}" "$RMQ_BIN/$cmd" "$@" 9>&-
  else
    env "${envs[@]}" "$RMQ_BIN/$cmd" "$@" 9>&-
  fi
}

prepare() {
  local n=$1 dir="$BASE/es$1"
  mkdir -p "$dir/mnesia" "$dir/log"
  : >"$dir/rabbitmq-env.conf"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$(amqp_port "$n")
prometheus.tcp.port = $((15780 + n))
prometheus.tcp.ip = 127.0.0.1
cluster_partition_handling = pause_minority
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 50MB
log.file.level = info
log.console = false
EOF
  echo "[rabbitmq_prometheus]." >"$dir/enabled_plugins"
  echo "[]." >"$dir/advanced.config"
  if [ "$(id -u)" -eq 0 ] && id -u rabbitmq >/dev/null 2>&1; then
    chown -R rabbitmq: "$BASE"
    # the rabbitmq user's cookie is created by its first node if absent
  fi
}

port_open() { python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), timeout=1).close()" 2>/dev/null; }


start_node() {
  local n=$1
  if port_open "$(amqp_port "$n")"; then return 0; fi
  prepare "$n"
  rmq "$n" rabbitmq-server -detached >/dev/null 2>&1 || true
  local deadline=$((SECONDS + WAIT_S))
  # the node answers the CLI a moment after the VM starts; await_startup needs it to answer
  until rmq "$n" rabbitmqctl -n "$(node_name "$n")" -q --timeout 30 await_startup >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "node $(node_name "$n") did not start; see $BASE/es$n/log"
    sleep 0.5
  done
}

cluster_members() {  # running members, as a running node sees them
  local n
  n=$(any_running) || return 0
  rmq "$n" rabbitmqctl -n "$(node_name "$n")" -q eval \
    'io:format("~s~n", [string:join([atom_to_list(N) || N <- rabbit_nodes:all_running()], " ")]).' \
    2>/dev/null | head -1
}

any_running() {  # the number of a node whose AMQP port answers
  local n
  for n in "${NODES[@]}"; do
    if port_open "$(amqp_port "$n")"; then echo "$n"; return 0; fi
  done
  return 1
}

in_cluster() {  # is node N a member of the cluster (running or not), as a running node sees it?
  local m
  m=$(any_running) || return 1
  rmq "$m" rabbitmqctl -n "$(node_name "$m")" -q eval \
    "io:format(\"~p~n\", [lists:member('$(node_name "$1")', rabbit_nodes:all())])." 2>/dev/null | grep -q true
}

wait_formed() {
  local deadline=$((SECONDS + WAIT_S)) members
  while [ $SECONDS -lt $deadline ]; do
    members=$(cluster_members || true)
    if [ "$(wc -w <<<"$members")" -eq 3 ]; then return 0; fi
    sleep 0.5
  done
  die "the cluster did not form within ${WAIT_S}s (running: ${members:-none})"
}

start() {
  command -v rabbitmq-server >/dev/null || [ -x "$RMQ_BIN/rabbitmq-server" ] || die "rabbitmq-server is not installed"
  start_node 1
  local n
  for n in 2 3; do
    start_node "$n"
    if ! in_cluster "$n"; then
      rmq "$n" rabbitmqctl -n "$(node_name "$n")" -q stop_app >/dev/null 2>&1
      rmq "$n" rabbitmqctl -n "$(node_name "$n")" -q reset >/dev/null 2>&1
      rmq "$n" rabbitmqctl -n "$(node_name "$n")" -q join_cluster "$(node_name 1)" >/dev/null 2>&1 || die "$(node_name "$n") could not join $(node_name 1)"
      rmq "$n" rabbitmqctl -n "$(node_name "$n")" -q start_app >/dev/null 2>&1
    fi
  done
  wait_formed
  echo "cluster up: $(cluster_members)"
  echo "EVENTSINK_AMQP_URL=$(urls)"
}

node_registered() { epmd -names 2>/dev/null | grep -q "^name es$1 at"; }

stop_node() {
  local n=$1
  # a node paused by pause_minority has no AMQP port but its VM runs: stop whatever epmd knows
  if port_open "$(amqp_port "$n")" || node_registered "$n"; then
    rmq "$n" rabbitmqctl -n "$(node_name "$n")" -q --timeout 120 stop >/dev/null 2>&1 || true
  fi
  # stop returns as the node shuts down; wait until its VM is gone (it leaves epmd last)
  local deadline=$((SECONDS + WAIT_S))
  while node_registered "$n" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
}

stop() {
  local n
  for n in 3 2 1; do stop_node "$n"; done
  for n in "${NODES[@]}"; do
    ! node_registered "$n" || die "$(node_name "$n") is still running; its data stays in $BASE"
  done
  rm -rf "$BASE"
  echo "cluster stopped"
}

node_start() {
  check_node "$1"
  [ -d "$BASE/es1" ] || die "no cluster under $BASE; run: $0 start"
  start_node "$1"
  local deadline=$((SECONDS + WAIT_S))
  until in_cluster "$1" && grep -qw "$(node_name "$1")" <<<"$(cluster_members)"; do
    [ $SECONDS -lt $deadline ] || die "$(node_name "$1") did not rejoin the cluster"
    sleep 0.5
  done
  echo "$(node_name "$1") running; cluster: $(cluster_members)"
}

node_stop() {
  check_node "$1"
  stop_node "$1"
  echo "$(node_name "$1") stopped"
}

urls() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2F"); done
  (IFS=,; echo "${out[*]}")
}

status() {
  local n up=0
  for n in "${NODES[@]}"; do
    if port_open "$(amqp_port "$n")"; then echo "$(node_name "$n") amqp :$(amqp_port "$n") up"; up=$((up + 1))
    else echo "$(node_name "$n") amqp :$(amqp_port "$n") down"; fi
  done
  if [ $up -gt 0 ]; then echo "running cluster members: $(cluster_members)"; fi
  [ $up -eq 3 ]
}

case "${1:-}" in
  start|stop|node-stop|node-start)
    # one change at a time: two starts of a node race for its ports and pid file
    mkdir -p "$(dirname "$BASE")"
    exec 9>"$BASE.lck"  # (the nodes do not inherit it: rmq closes fd 9)
    flock -w "$WAIT_S" 9 || die "another cluster.sh holds $BASE.lck"
    ;;
esac

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  node-stop) node_stop "${2:-}" ;;
  node-start) node_start "${2:-}" ;;
  status) status ;;
  urls) urls ;;
  *) echo "usage: $0 start|stop|node-stop N|node-start N|status|urls" >&2; exit 2 ;;
esac
