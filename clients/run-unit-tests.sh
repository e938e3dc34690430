#!/usr/bin/env bash
# Runs the unit tests of the PHP, Java and Python clients and prints one total line: "N passed, M failed".
#
# Usage: clients/run-unit-tests.sh [--install]
#   --install  first install php-cli and php-curl with apt-get when php is missing (needs root).
# Exits non-zero when any test failed or any suite could not run (a suite that dies before
# printing its counts is counted as one failure).
set -uo pipefail
cd "$(dirname "$0")"

if [[ "${1:-}" == "--install" ]] && ! command -v php >/dev/null; then
    apt-get update -qq && apt-get install -y -qq php-cli php-curl >/dev/null
fi

total_passed=0
total_failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Adds a suite's counts to the totals; `passed failed` are empty when the suite printed none.
tally() {
    local name=$1 status=$2 passed=$3 failed=$4
    if [[ -z "$passed" || -z "$failed" ]]; then
        echo "== $name: no result line (exit $status), counted as 1 failure"
        passed=0 failed=1
    elif [[ $status -ne 0 && $failed -eq 0 ]]; then
        echo "== $name: exit $status despite no failed test, counted as 1 failure"
        failed=1
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
}

# PHP and Java runners end with "<lang>: N passed, M failed".
counts() { sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1; }

echo "== php"
if command -v php >/dev/null; then
    php php/tests/run.php 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    read -r p f <<<"$(counts)"
    tally php "$status" "${p:-}" "${f:-}"
else
    echo "php not found: install it with 'apt-get install -y php-cli php-curl' or run with --install"
    tally php 127 "" ""
fi

echo "== java"
java/build.sh test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
read -r p f <<<"$(counts)"
tally java "$status" "${p:-}" "${f:-}"

echo "== python"
(cd python && python3 -m unittest discover -s tests -t . -v) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$log" | tail -1)
if [[ -n "$ran" ]]; then
    summary=$(grep -E '^(OK|FAILED)' "$log" | tail -1)
    num() { grep -o "$1=[0-9]*" <<<"$summary" | cut -d= -f2 || true; }
    failures=$(num failures); errors=$(num errors); skipped=$(num skipped)
    f=$(( ${failures:-0} + ${errors:-0} ))
    p=$(( ran - f - ${skipped:-0} ))
    tally python "$status" "$p" "$f"
else
    tally python "$status" "" ""
fi

echo "== python packaging (pip install into a fresh venv, import from outside the tree)"
venv=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$venv"' EXIT
# Built from a copy, so setuptools leaves no build/ or egg-info in the tree.
if python3 -m venv "$venv" && cp -r python "$venv/source" \
    && "$venv/bin/pip" install --quiet --disable-pip-version-check "$venv/source" \
    && (cd "$venv" && "$venv/bin/python" -c '
import importlib.resources, herald_client
assert "site-packages" in herald_client.__file__, herald_client.__file__
assert importlib.resources.files("herald_client").joinpath("py.typed").is_file(), "py.typed missing"
for name in ("Client", "HeraldError", "UnauthorizedError", "TooLargeError"):
    getattr(herald_client, name)
print("installed", herald_client.__file__)
'); then
    tally "python packaging" 0 1 0
else
    tally "python packaging" 1 0 1
fi

echo "$total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
