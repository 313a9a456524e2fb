#!/usr/bin/env bash
# A local Redis Cluster for the cluster suite (test/cluster) and the bench's --redis-cluster run:
# 3 masters and 3 replicas of Debian's redis-server in cluster mode, on loopback only, beside (not
# instead of) the shared single Redis of scripts/services.sh.
#
# Usage: scripts/redis-cluster.sh start|stop|status|env|reset
#   start   starts the 6 nodes and creates the cluster (once; a restart keeps nodes.conf)
#   stop    stops them (data kept: the next start finds the same cluster)
#   reset   stops them and removes their data
#   env     prints REDIS_CLUSTER_NODES=... (eval-able)
#
# Env: REDIS_CLUSTER_PORT (17000: nodes on 17000-17005, cluster bus on port + 10000)
#      REDIS_CLUSTER_NODE_TIMEOUT (2000 ms: a master unreachable this long is failed over)
#      SERVICES_RUN_DIR (.services): data, logs and pid files under <it>/redis-cluster/
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
RUN="${SERVICES_RUN_DIR:-$ROOT/.services}/redis-cluster"
HOST=127.0.0.1 # never anything else
BASE_PORT="${REDIS_CLUSTER_PORT:-17000}"
NODE_TIMEOUT="${REDIS_CLUSTER_NODE_TIMEOUT:-2000}"
PORTS=()
for i in 0 1 2 3 4 5; do PORTS+=($((BASE_PORT + i))); done

log() { printf '[redis-cluster] %s\n' "$*" >&2; }
die() { printf '[redis-cluster] ERROR: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

nodes_list() {
  local IFS=,
  local list=()
  for p in "${PORTS[@]}"; do list+=("$HOST:$p"); done
  echo "${list[*]}"
}

start_node() {
  local port=$1 dir="$RUN/$1"
  mkdir -p "$dir"
  if port_open "$port"; then
    log "a process already listens on $HOST:$port (left from an earlier start?)"
    return
  fi
  # No persistence: the cluster carries pub/sub and rate-limit windows only. nodes.conf is kept
  # so that a stop/start finds the same cluster.
  redis-server --port "$port" --bind "$HOST" --protected-mode yes \
    --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
    --cluster-node-timeout "$NODE_TIMEOUT" --cluster-announce-ip "$HOST" \
    --save '' --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
}

cluster_ok() { redis-cli -h "$HOST" -p "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

cmd_start() {
  command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
  local version
  version="$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')"
  [ "${version:-0}" -ge 7 ] || die "sharded pub/sub needs Redis >= 7 (found: $(redis-server --version))"
  for p in "${PORTS[@]}"; do start_node "$p"; done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 100); do port_open "$p" && break; sleep 0.1; done
    port_open "$p" || die "node $p did not start: see $RUN/$p/redis.log"
  done
  local known
  known="$(redis-cli -h "$HOST" -p "${PORTS[0]}" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')"
  if [ "${known:-1}" -lt 6 ]; then
    log "creating the cluster (3 masters, 3 replicas)"
    local addrs=()
    for p in "${PORTS[@]}"; do addrs+=("$HOST:$p"); done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$RUN/create.log" 2>&1 ||
      die "cluster create failed: see $RUN/create.log"
  fi
  for _ in $(seq 1 300); do cluster_ok && break; sleep 0.1; done
  cluster_ok || die "the cluster did not reach cluster_state:ok"
  log "up: $(nodes_list) (node timeout ${NODE_TIMEOUT} ms)"
}

cmd_stop() {
  for p in "${PORTS[@]}"; do
    local pidfile="$RUN/$p/redis.pid"
    if [ -f "$pidfile" ]; then
      local pid
      pid="$(cat "$pidfile")"
      # Only the redis-server this script started on that port.
      if kill -0 "$pid" 2>/dev/null && grep -q "redis-server" "/proc/$pid/cmdline" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
      rm -f "$pidfile"
    fi
  done
  log "stopped"
}

cmd_status() {
  for p in "${PORTS[@]}"; do
    if port_open "$p"; then
      printf '%s %s\n' "$p" "$(redis-cli -h "$HOST" -p "$p" role | head -1)"
    else
      printf '%s down\n' "$p"
    fi
  done
  cluster_ok && echo "cluster_state:ok" || echo "cluster_state:not ok"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "REDIS_CLUSTER_NODES=$(nodes_list)" ;;
  reset)
    cmd_stop
    rm -rf "$RUN"
    ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 2
    ;;
esac
