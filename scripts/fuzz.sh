#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 30): client frames, REST and
# /push bodies, tokens, file-tail lines, Pusher names. Fails, naming the reproducer and the command that
# replays it, when a target panics, runs out of memory or hangs on an input.
#
#   scripts/fuzz.sh [SECONDS]
#
# Knobs (environment): HERALD_FUZZ_JOBS (targets run side by side; default: the number of
# cores, at most 2), HERALD_FUZZ_RSS_MB (memory limit per target, default 2048),
# HERALD_FUZZ_SANITIZER (none; `address` adds AddressSanitizer at about half the speed).
#
# The corpus grows in fuzz/corpus/<target>/ (only the committed seed-* files are in git), so a
# later run starts where the last one stopped. Reproducers land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-30}"
rss_mb="${HERALD_FUZZ_RSS_MB:-2048}"
sanitizer="${HERALD_FUZZ_SANITIZER:-none}"
cores="$(nproc 2>/dev/null || echo 1)"
jobs="${HERALD_FUZZ_JOBS:-$((cores < 2 ? cores : 2))}"
targets=(client_frame rest_body push_body token file_tail_line pusher_names)

# cargo-fuzz passes nightly-only flags to rustc; the stable toolchain accepts them with this.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

started=$SECONDS
cargo fuzz build -s "$sanitizer"
echo "built ${#targets[@]} fuzz targets in $((SECONDS - started)) s"

mkdir -p artifacts
run_one() {
  local target="$1"
  mkdir -p "corpus/$target" "artifacts/$target"
  # -timeout: one input taking over 10 s is a hang; -malloc_limit_mb: one allocation over the
  # RSS limit is a finding too (an input that makes Herald reserve gigabytes).
  cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
    -timeout=10 -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
    >"artifacts/$target.log" 2>&1
}

for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$target" &
  echo "fuzzing $target for $seconds s"
done
wait || true

failed=0
for target in "${targets[@]}"; do
  log="artifacts/$target.log"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  corpus="$(find "corpus/$target" -type f | wc -l)"
  reproducer="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
  if [ -n "$reproducer" ] || [ -z "$execs" ]; then
    failed=1
    echo "FAIL $target: see fuzz/$log"
    grep -m 5 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/  /' || true
    if [ -n "$reproducer" ]; then
      echo "  reproducer: fuzz/$reproducer"
      echo "  rerun:      (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s $sanitizer $target $reproducer)"
    fi
  else
    echo "ok   $target: $execs executions in $seconds s, corpus of $corpus inputs"
  fi
done
echo "fuzzing took $((SECONDS - started)) s"
exit "$failed"
