#!/usr/bin/env bash
# Local backing services for iot-realtime-pipeline, without Docker:
#   redis     Debian's redis-server, own instance (not the system service), no persistence
#   kafka     Apache Kafka 4.x single-node KRaft broker+controller, jars from Maven (services/kafka/pom.xml)
#   ferretdb  FerretDB 1.24 (MongoDB wire protocol) on SQLite, built from its Go module
#
# Usage: scripts/services.sh start|stop|restart|status [redis|kafka|ferretdb ...]
#        scripts/services.sh provision [service ...]   download/build only
#        scripts/services.sh reset                     stop all and wipe runtime data (.services/)
#        scripts/services.sh env                       print the API's connection variables (eval-able)
#        scripts/services.sh logs [service]            tail the service logs
#
# Everything binds 127.0.0.1 only. Downloads/builds are cached in .cache/ (SERVICES_CACHE_DIR),
# runtime data, logs and pid files live in .services/ (SERVICES_RUN_DIR); both are git-ignored.
# Stopping/starting one service keeps its data (Kafka log dirs, FerretDB SQLite files).
#
# Env: REDIS_PORT (6379) KAFKA_PORT (9092) KAFKA_CONTROLLER_PORT (9093) MONGO_PORT (27017)
#      KAFKA_HEAP (512m) KAFKA_NUM_PARTITIONS (6) FERRETDB_LOG_LEVEL (error)
#      SERVICES_WAIT_TIMEOUT (seconds, 120) SERVICES_STOP_TIMEOUT (seconds, 30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
CACHE="${SERVICES_CACHE_DIR:-$ROOT/.cache}"
RUN="${SERVICES_RUN_DIR:-$ROOT/.services}"
HOST=127.0.0.1 # never anything else: all services are loopback-only

REDIS_PORT="${REDIS_PORT:-6379}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
MONGO_PORT="${MONGO_PORT:-27017}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
KAFKA_NUM_PARTITIONS="${KAFKA_NUM_PARTITIONS:-6}"
FERRETDB_LOG_LEVEL="${FERRETDB_LOG_LEVEL:-error}" # warn logs a full dump of every error reply
WAIT_TIMEOUT="${SERVICES_WAIT_TIMEOUT:-120}"
STOP_TIMEOUT="${SERVICES_STOP_TIMEOUT:-30}"

FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION=v1.24.2
FERRETDB_BIN="$CACHE/bin/ferretdb"
KAFKA_POM="$ROOT/services/kafka/pom.xml"
KAFKA_LOG4J="$ROOT/services/kafka/log4j2.xml"
KAFKA_LIBS="$CACHE/kafka/libs"

ALL_SERVICES=(redis kafka ferretdb)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_install() { # apt_install pkg... ; apt-get update only if the plain install fails
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "$@" >/dev/null; } ||
    die "apt-get install $* failed"
}

# ---------------------------------------------------------------- helpers
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

proc_marker() { # a string that must be in the service's command line (guards against pid reuse)
  case "$1" in
    redis) echo redis-server ;;
    kafka) echo kafka.Kafka ;;
    ferretdb) echo ferretdb ;;
  esac
}

alive() { # alive pid [marker] : running (not a zombie) and, if given, its cmdline contains marker
  local pid=$1 marker=${2:-} state cmd
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/stat" ]; then
    state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [ "$state" != Z ] && [ "$state" != X ] || return 1 # zombie: dead, parent (init) has not reaped it yet
    if [ -n "$marker" ]; then
      cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
      [[ $cmd == *"$marker"* ]] || return 1
    fi
  fi
  return 0
}

pid_of() { # prints the pid from a pid file if that process is alive and is the service
  local f="$RUN/$1/$1.pid" pid
  [ -s "$f" ] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [ -n "$pid" ] && alive "$pid" "$(proc_marker "$1")" || return 1
  echo "$pid"
}

port_of() {
  case "$1" in
    redis) echo "$REDIS_PORT" ;;
    kafka) echo "$KAFKA_PORT" ;;
    ferretdb) echo "$MONGO_PORT" ;;
  esac
}

is_up() { # cheap check: our process alive and its port accepting
  local pid
  pid="$(pid_of "$1")" || return 1
  port_open "$(port_of "$1")"
}

wait_port() { # wait_port service port seconds
  local svc=$1 port=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    port_open "$port" && return 0
    pid_of "$svc" >/dev/null || { tail -n 30 "$(svc_log "$svc")" >&2 2>/dev/null || true; die "$svc exited during startup (log: $(svc_log "$svc"))"; }
    sleep 0.1
  done
  tail -n 30 "$(svc_log "$svc")" >&2 2>/dev/null || true
  die "$svc did not open $HOST:$port within ${secs}s"
}

svc_log() {
  case "$1" in
    redis) echo "$RUN/redis/redis.log" ;;
    kafka) echo "$RUN/kafka/logs/server.log" ;;
    ferretdb) echo "$RUN/ferretdb/ferretdb.log" ;;
  esac
}

check_port_free() { # refuse to start if something that is not ours holds the port
  local svc=$1 port=$2
  if port_open "$port"; then
    die "$HOST:$port is already in use by another process (not our $svc); stop it or set the port env var"
  fi
}

spawn() { # spawn service logfile cmd... : detached background process, pid file written
  local svc=$1 out=$2
  shift 2
  # setsid: own session, so a Ctrl-C or a test runner killing its process group does not hit it;
  # 9>&- : do not leak the start lock fd into the daemon.
  setsid nohup "$@" </dev/null >>"$out" 2>&1 9>&- &
  echo $! >"$RUN/$svc/$svc.pid"
}

# ---------------------------------------------------------------- provisioning
provision_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  log "installing redis-server (apt)"
  apt_install redis-server
  # the package may start the system instance on 6379; we run our own, so stop it if it did
  if command -v service >/dev/null && pgrep -x redis-server >/dev/null 2>&1; then
    as_root service redis-server stop >/dev/null 2>&1 || true
  fi
}

need_java() {
  command -v java >/dev/null || { log "installing JDK 17 (apt)"; apt_install openjdk-17-jre-headless; }
  local v
  v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  [ "${v%%.*}" -ge 17 ] 2>/dev/null || die "Kafka 4 needs Java >= 17 (found ${v:-none})"
}

provision_kafka() {
  need_java
  local want have=""
  want="$(sha256sum <"$KAFKA_POM" | cut -c1-16)"
  [ -f "$KAFKA_LIBS/.stamp" ] && have="$(cat "$KAFKA_LIBS/.stamp")"
  [ "$want" = "$have" ] && return 0
  command -v mvn >/dev/null || { log "installing maven (apt)"; apt_install maven; }
  log "fetching Kafka jars with Maven into ${KAFKA_LIBS#"$ROOT"/} (one-time)"
  local tmp="$KAFKA_LIBS.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  mkdir -p "$CACHE/kafka"
  mvn -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$CACHE/kafka/mvn.log" 2>&1 ||
    { tail -n 40 "$CACHE/kafka/mvn.log" >&2; rm -rf "$tmp"; die "maven failed to fetch Kafka (log: $CACHE/kafka/mvn.log)"; }
  echo "$want" >"$tmp/.stamp"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

ferretdb_version_ok() { # no "| grep -q" here: with pipefail, SIGPIPE on the writer fails the pipeline
  local out
  [ -x "$FERRETDB_BIN" ] && out="$("$FERRETDB_BIN" --version 2>/dev/null)" || return 1
  [[ $'\n'"$out"$'\n' == *$'\n'"version: $FERRETDB_VERSION"$'\n'* ]]
}

provision_ferretdb() {
  # The API keeps an extra SQLite index on FerretDB's tables (src/store/ferretSqlite.ts) with this CLI.
  command -v sqlite3 >/dev/null || { log "installing sqlite3 (apt)"; apt_install sqlite3; }
  ferretdb_version_ok && return 0
  command -v go >/dev/null || die "Go (>= 1.21) is required to build FerretDB"
  log "building FerretDB $FERRETDB_VERSION from its Go module (one-time, ~2 min)"
  local json dir commit src="$CACHE/ferretdb-src"
  json="$(cd "${TMPDIR:-/tmp}" && go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION")" ||
    die "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed"
  dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  commit="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]*\)",\{0,1\}$/\1/p' | head -n1)"
  [ -d "$dir" ] || die "could not locate the downloaded FerretDB module"
  rm -rf "$src"
  mkdir -p "$(dirname "$src")" "$CACHE/bin"
  cp -R "$dir" "$src"
  chmod -R u+w "$src"
  # The module zip lacks the generated build/version/*.txt; without version.txt the binary panics at start.
  printf '%s' "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  [ -n "$commit" ] && printf '%s' "$commit" >"$src/build/version/commit.txt"
  printf '%s' "source" >"$src/build/version/package.txt"
  # -buildvcs=false: the copy sits inside this repo's git tree; VCS stamping would make
  # FerretDB compare our repo's commit with commit.txt and panic.
  # ferretdb_no_postgresql: we only use the SQLite backend (smaller, faster build).
  (cd "$src" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -tags ferretdb_no_postgresql \
    -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) >&2 || die "FerretDB build failed"
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  ferretdb_version_ok || die "built FerretDB reports an unexpected version"
}

# ---------------------------------------------------------------- start
start_redis() {
  provision_redis
  mkdir -p "$RUN/redis"
  check_port_free redis "$REDIS_PORT"
  rm -f "$RUN/redis/redis.pid"
  # daemonized by redis itself; it writes the pid file
  redis-server --bind "$HOST" --port "$REDIS_PORT" --protected-mode yes \
    --daemonize yes --pidfile "$RUN/redis/redis.pid" --logfile "$RUN/redis/redis.log" --dir "$RUN/redis" \
    --save '' --appendonly no --loglevel warning 9>&- ||
    die "redis-server failed to start (see $RUN/redis/redis.log)"
  local i
  for ((i = 0; i < 100; i++)); do
    [ -s "$RUN/redis/redis.pid" ] && [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  die "redis did not answer PING (see $RUN/redis/redis.log)"
}

KAFKA_JAVA=(java -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
  -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
  -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$RUN/kafka/logs"
  -cp "$KAFKA_LIBS/*")

write_kafka_config() {
  cat >"$RUN/kafka/server.properties" <<EOF
# generated by scripts/services.sh on each start; edit the script, not this file
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/kafka/data
num.partitions=$KAFKA_NUM_PARTITIONS
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.retention.hours=24
log.segment.bytes=67108864
# after a kill -9 the restarted broker must wait for its old registration to expire:
# keep that short (default 9s) for fault-injection tests
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
num.network.threads=2
num.io.threads=4
EOF
}

start_kafka() {
  provision_kafka
  mkdir -p "$RUN/kafka/data" "$RUN/kafka/logs"
  check_port_free kafka "$KAFKA_PORT"
  check_port_free kafka "$KAFKA_CONTROLLER_PORT"
  write_kafka_config
  if [ ! -f "$RUN/kafka/data/meta.properties" ]; then
    local cid
    cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [ "${cid:0:1}" = "-" ] && cid="K${cid:1}"
    log "formatting Kafka storage (cluster id $cid)"
    "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --cluster-id "$cid" \
      --config "$RUN/kafka/server.properties" >>"$RUN/kafka/logs/format.log" 2>&1 9>&- ||
      { cat "$RUN/kafka/logs/format.log" >&2; die "kafka storage format failed"; }
  fi
  spawn kafka "$RUN/kafka/logs/stdout.log" "${KAFKA_JAVA[@]}" kafka.Kafka "$RUN/kafka/server.properties"
  wait_port kafka "$KAFKA_PORT" 90
}

start_ferretdb() {
  provision_ferretdb
  mkdir -p "$RUN/ferretdb/data" "$RUN/ferretdb/state"
  check_port_free ferretdb "$MONGO_PORT"
  spawn ferretdb "$RUN/ferretdb/ferretdb.log" \
    "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$RUN/ferretdb/data/" \
    --state-dir="$RUN/ferretdb/state" --listen-addr="$HOST:$MONGO_PORT" --debug-addr=- \
    --telemetry=disable --log-level="$FERRETDB_LOG_LEVEL"
  wait_port ferretdb "$MONGO_PORT" 30
}

# deep health check (real protocol requests) via node clients when available
deep_wait() {
  local only=()
  local s
  for s in "$@"; do case "$s" in ferretdb) only+=(mongo) ;; *) only+=("$s") ;; esac; done
  [ ${#only[@]} -gt 0 ] || return 0
  local csv
  csv="$(IFS=,; echo "${only[*]}")"
  if command -v node >/dev/null && [ -d "$ROOT/node_modules/kafkajs" ] && [ -d "$ROOT/node_modules/mongodb" ] && [ -d "$ROOT/node_modules/ioredis" ]; then
    REDIS_PORT="$REDIS_PORT" KAFKA_PORT="$KAFKA_PORT" MONGO_PORT="$MONGO_PORT" \
      REDIS_URL='' KAFKA_BROKERS='' MONGO_URL='' \
      node "$ROOT/scripts/wait-for-services.mjs" --only "$csv" --timeout "$WAIT_TIMEOUT" --quiet ||
      die "health check failed for: $csv (logs: $RUN/*/)"
  else
    log "node_modules not installed: only TCP checks were done (run npm ci, then scripts/wait-for-services.mjs)"
  fi
}

with_lock() { # serialize start/stop/reset between concurrent invocations
  mkdir -p "$RUN"
  exec 9>"$RUN/.lock"
  if command -v flock >/dev/null; then
    flock -w 600 9 || die "could not get the services lock ($RUN/.lock)"
  fi
}

cmd_start() {
  local svcs=("$@") s started=() t0=$SECONDS
  with_lock
  for s in "${svcs[@]}"; do
    if is_up "$s"; then continue; fi
    if pid_of "$s" >/dev/null; then
      log "$s process is alive but $HOST:$(port_of "$s") is not accepting: restarting it"
      stop_one "$s"
    fi
    log "starting $s on $HOST:$(port_of "$s")"
    "start_$s"
    started+=("$s")
  done
  # deep-check every requested service (fast when already up), so "start" returns only when usable
  deep_wait "${svcs[@]}"
  if [ ${#started[@]} -gt 0 ]; then
    log "started: ${started[*]} ($((SECONDS - t0))s)"
  else
    log "already running: ${svcs[*]}"
  fi
}

# ---------------------------------------------------------------- stop
stop_one() {
  local svc=$1 pid i
  if ! pid="$(pid_of "$svc")"; then
    rm -f "$RUN/$svc/$svc.pid"
    return 0
  fi
  log "stopping $svc (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$svc did not exit within ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  fi
  # the port must be free before a following start (a SIGKILLed JVM can linger briefly)
  for ((i = 0; i < 50; i++)); do port_open "$(port_of "$svc")" || break; sleep 0.1; done
  rm -f "$RUN/$svc/$svc.pid"
}

cmd_stop() {
  with_lock
  local s
  for s in "$@"; do stop_one "$s"; done
}

# ---------------------------------------------------------------- status / env / logs
cmd_status() {
  local s pid rc=0
  for s in "$@"; do
    if pid="$(pid_of "$s")" && port_open "$(port_of "$s")"; then
      printf '%-9s up    pid %-7s %s:%s\n' "$s" "$pid" "$HOST" "$(port_of "$s")"
    elif pid="$(pid_of "$s")"; then
      printf '%-9s start pid %-7s %s:%s (process alive, port not open yet)\n' "$s" "$pid" "$HOST" "$(port_of "$s")"
      rc=1
    else
      printf '%-9s down\n' "$s"
      rc=1
    fi
  done
  return $rc
}

cmd_env() { # only variables the API reads (src/config.ts refuses unknown KAFKA_/MONGODB_/REDIS_ ones)
  cat <<EOF
export REDIS_URL=redis://$HOST:$REDIS_PORT
export KAFKA_BROKERS=$HOST:$KAFKA_PORT
export MONGODB_URL=mongodb://$HOST:$MONGO_PORT/
export MONGODB_FERRETDB_SQLITE_DIR=$RUN/ferretdb/data
EOF
}

parse_services() { # validates names, defaults to all; "mongo"/"mongodb" alias ferretdb
  local out=() s
  [ $# -eq 0 ] && set -- "${ALL_SERVICES[@]}"
  for s in "$@"; do
    case "$s" in
      redis | kafka | ferretdb) out+=("$s") ;;
      mongo | mongodb) out+=(ferretdb) ;;
      all) out+=("${ALL_SERVICES[@]}") ;;
      *) die "unknown service '$s' (expected: ${ALL_SERVICES[*]})" ;;
    esac
  done
  printf '%s\n' "${out[@]}"
}

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  local svcs=()
  case "$cmd" in
    start | stop | restart | status | provision | logs) mapfile -t svcs < <(parse_services "$@") ;;
  esac
  case "$cmd" in
    start) cmd_start "${svcs[@]}" ;;
    stop) cmd_stop "${svcs[@]}" ;;
    restart) cmd_stop "${svcs[@]}"; exec 9>&-; cmd_start "${svcs[@]}" ;;
    status) cmd_status "${svcs[@]}" ;;
    provision) for s in "${svcs[@]}"; do "provision_$s"; done ;;
    reset)
      cmd_stop "${ALL_SERVICES[@]}"
      log "wiping $RUN"
      find "$RUN" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
      ;;
    env) cmd_env ;;
    logs) for s in "${svcs[@]}"; do echo "==> $(svc_log "$s")"; tail -n 40 "$(svc_log "$s")" 2>/dev/null || true; done ;;
    *)
      sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || exit 2
      ;;
  esac
}

main "$@"
