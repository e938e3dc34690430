#!/usr/bin/env bash
# Compiles the Java client and its end-to-end check with plain javac, then runs it against the Herald named by HERALD_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/e2e
rm -rf "$out"
mkdir -p "$out"
# Compiler chatter goes to stderr: the harness reads only TOKEN and E2E OK lines on stdout.
javac --release 17 -encoding UTF-8 -d "$out" $(find src/main/java -name '*.java') tests/E2e.java >&2
exec java -cp "$out" E2e
