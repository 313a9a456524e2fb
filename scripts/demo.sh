#!/usr/bin/env bash
# The main job in one command: local services, one API replica, a few simulated sensors.
# Open the printed dashboard URL (an OVERHEAT sensor's incident shows within seconds), or GraphiQL
# and run the prefilled subscription to watch overheat alerts.
# Ctrl-C stops the sensors and the API (gracefully); `npm run services:stop` stops the services.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
PORT="${PORT:-4000}"
export PORT

# Node 24: the machine's, or fetched once into .cache/ when it has another major (scripts/use-node.sh).
source scripts/use-node.sh
[ -d node_modules ] || npm ci
bash scripts/services.sh start
# Connection variables of the local services, incl. FerretDB's SQLite directory for the history indexes.
eval "$(bash scripts/services.sh env)"

# Development mode, explicitly: detailed errors, and a fresh local admin key prefilled in GraphiQL's
# headers tab. A bare `npm start` has neither and needs API_KEYS or a JWT secret (see README, Security).
export DEV_MODE=true
DEV_ADMIN_KEY="${DEV_ADMIN_KEY:-dev-$(node -e "process.stdout.write(require('node:crypto').randomBytes(16).toString('hex'))")}"
export DEV_ADMIN_KEY
AUTH=(-H "authorization: Bearer $DEV_ADMIN_KEY")

# Own session: a terminal Ctrl-C (SIGINT to the whole foreground group) must not reach the API
# directly, or it would also get the TERM below and treat it as a second signal (exit at once).
setsid node --import tsx src/main.ts &
API_PID=$!
stop_api() {
  trap - INT TERM EXIT
  # The demo's sensors end with it (a replica stopped on its own hands its sensors to the others instead).
  curl -sf -m 3 "http://127.0.0.1:$PORT/graphql" -H 'content-type: application/json' "${AUTH[@]}" \
    --data '{"query":"mutation { stopSensors }"}' >/dev/null 2>&1 || true
  kill -TERM $API_PID 2>/dev/null
  wait $API_PID 2>/dev/null
}
trap stop_api INT TERM EXIT

for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  kill -0 $API_PID 2>/dev/null || { echo "the API exited; see its log above" >&2; exit 1; }
  sleep 0.5
done

graphql() {
  curl -sf "http://127.0.0.1:$PORT/graphql" -H 'content-type: application/json' "${AUTH[@]}" --data "$1"
}
spawn() {
  graphql "{\"query\":\"mutation { spawnSensors(input: { count: $1, scenario: $2, intervalMs: $3 }) { sensors { id } } }\"}" >/dev/null
}
# Start a little after the banner, so a subscription opened right away sees the overheat ramp.
spawn 5 NORMAL 1000
spawn 2 OVERHEAT 1000
# Real failure data: NAB's machine temperature from the day before its first labelled failure, at
# 3000x (a 5-minute sample every 100 ms), judged at 38 °C (the series peaks near 42.5 °C).
REPLAY_ID=$(graphql '{"query":"mutation { spawnSensors(input: { count: 1, scenario: REPLAY, replay: { dataset: NAB_MACHINE_TEMPERATURE, speedup: 3000, from: \"2013-12-11T00:00:00Z\" } }) { sensors { id } } }"}' |
  node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>process.stdout.write(JSON.parse(s).data.spawnSensors.sensors[0].id))')
graphql "{\"query\":\"mutation { setThreshold(sensorIds: [\\\"$REPLAY_ID\\\"], thresholdC: 38, hysteresisC: 2) { sensorId } }\"}" >/dev/null

cat <<BANNER

  iot-realtime-pipeline is running.
    Dashboard: http://127.0.0.1:$PORT/dashboard (map, live temperatures, incidents to acknowledge)
    GraphiQL:  http://127.0.0.1:$PORT/graphql   (run the prefilled subscription)
    Admin key: $DEV_ADMIN_KEY   (prefilled in GraphiQL's Headers tab; development only)
               curl -H 'authorization: Bearer $DEV_ADMIN_KEY' ...
    Sensors:   5 NORMAL + 2 OVERHEAT + 1 REPLAY of NAB's failing machine (threshold 38 °C)
    Health:    http://127.0.0.1:$PORT/readyz    Metrics: http://127.0.0.1:$PORT/metrics
  Ctrl-C stops the API; npm run services:stop stops Kafka, FerretDB and Redis.

BANNER
wait $API_PID
