#!/usr/bin/env bash
# Runs every Herald test on a fresh machine: installs what is missing, then runs the Rust
# suites (unit, end-to-end, cluster, adapters, clients), the JS client's unit tests, the browser
# tests in headless Chromium, and a smoke run of the benchmark tool.
set -euo pipefail
# A clean build without incremental caches: CI starts from nothing, and the caches cost ~0.7 GB.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

install_missing() {
  local packages=()
  command -v redis-server >/dev/null || packages+=(redis-server)
  command -v php >/dev/null || packages+=(php-cli)
  { command -v php >/dev/null && php -m 2>/dev/null | grep -qi '^curl$'; } || packages+=(php-curl)
  command -v chromium >/dev/null || packages+=(chromium)
  command -v javac >/dev/null || packages+=(openjdk-17-jdk-headless)
  command -v node >/dev/null || packages+=(nodejs npm)
  command -v curl >/dev/null || packages+=(curl)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages+=(nginx-light) # tests/ops.rs runs ops/nginx
  command -v systemd-analyze >/dev/null || packages+=(systemd) # tests/ops.rs verifies ops/systemd
  command -v openssl >/dev/null || packages+=(openssl) # certificates of tests/nats_security.rs
  if [ ${#packages[@]} -gt 0 ]; then
    say "installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
  HERALD_NATS_SERVER="$(scripts/ensure-nats.sh)"
  export HERALD_NATS_SERVER
  echo "nats-server: $HERALD_NATS_SERVER ($("$HERALD_NATS_SERVER" --version))"
  HERALD_PUSHER_PYTHON="$(scripts/ensure-pusher-sdk.sh)" # Pusher's Python SDK, for tests/pusher.rs
  export HERALD_PUSHER_PYTHON
}

say "checking what is installed"
install_missing

say "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

say "Rust tests (unit, end-to-end on the embedded bus and on nats-server, cluster, adapters, clients)"
cargo build --workspace --all-targets --quiet
cargo test --workspace --quiet -- --test-threads 4 2>&1 | tee test-output.log | grep -E '^(test result|failures:|---- |thread)' || true
if grep -q 'test result: FAILED' test-output.log || ! grep -q 'test result: ok' test-output.log; then
  echo "Rust tests failed; see test-output.log"; exit 1
fi

say "fuzzing (30 s per target; a longer run: scripts/fuzz.sh 300)"
scripts/fuzz.sh 30

say "backend client unit tests (PHP, Java, Python)"
clients/run-unit-tests.sh

say "JavaScript client unit tests"
(cd clients/js && npm test --silent)

say "browser tests in headless Chromium, and the JS client in a Node script"
cargo build --quiet
# Here a missing part (browser, binary, nats-server) fails the run instead of skipping.
HERALD_REQUIRE_E2E=1 HERALD_BIN="$PWD/target/debug/herald" NATS_SERVER_BIN="$HERALD_NATS_SERVER" \
  tests/browser/run.sh

say "benchmark smoke run (tiny sizes)"
bench/smoke.sh

say "all tests passed"
