#!/usr/bin/env bash
# Smoke run of every herald-bench mode (and two fault scenarios) with tiny sizes, for CI: a few connections, a few events,
# under a minute once built. Exits non-zero on any failure and on any lost, duplicated,
# out-of-order or unexpected delivery (STRICT=1).
#
#   bench/smoke.sh            (debug build; PROFILE=release to use release binaries)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PROFILE="${PROFILE:-debug}"
export STRICT=1
export GATEWAYS=2
export SUBS=6 EVENTS=60 CONCURRENCY=4
export RATES="40" RATE_SECS=1 LAT_CONCURRENCY=2
export CHANNEL_SUBS=8 CHANNELS=4 PER_CONN=2 CHANNEL_EVENTS=40
export IDLE_CONNS=10 NATS_IDLE_CONNS=10 IDLE_HOLD=1
export INGEST_CLIENTS=1,4 INGEST_SECS=1
export BROADCAST_CONNS=6 BROADCAST_EVENTS=5
export RPC_CLIENTS=1,4 RPC_SECS=1 PUBLISHERS=2
export BENCH_ARGS="--max-secs 60 --drain-secs 10 --conns-per-proc 4"
export PUSHER_RATE=40
"$here/run.sh" fanout latency channels idle ingest broadcast publish rpc pusher
# Two fault scenarios, tiny: a dispatcher and a gateway killed (about 25 s).
SKIP_BUILD=1 FAULT_ARGS="--clients 8 --rate 20 --phase-secs 2 --scenario dispatcher --scenario gateway" \
  exec "$here/run.sh" faults
