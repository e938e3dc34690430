"""End-to-end check of the Python client against a running Herald, driven by HERALD_* environment variables.

Run by the Rust test harness: python3 clients/python/tests/e2e.py. Prints ``TOKEN <jwt>`` and
``E2E OK`` on stdout (diagnostics go to stderr) and exits 0, or says what it expected and got and
exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, NoReturn, Type

# Test this source tree, whether or not some herald_client is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from herald_client import BadRequestError, Client, HeraldError, TooLargeError, UnauthorizedError  # noqa: E402


def fail(message: str) -> NoReturn:
    print(f"E2E FAIL: {message}", flush=True)
    sys.exit(1)


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        fail(f"environment variable {name} is not set")
    return value


def expect_id(step: str, call: Callable[[], str]) -> None:
    """Runs one notify call that must succeed with a non-empty event id."""
    try:
        event_id = call()
    except Exception as error:  # noqa: BLE001 - any failure is a failed expectation
        fail(f"{step}: expected an event id, got {type(error).__name__}: {error}")
    if not isinstance(event_id, str) or not event_id:
        fail(f"{step}: expected a non-empty event id, got {event_id!r}")
    print(f"{step}: event id {event_id}", file=sys.stderr)


def expect_error(step: str, cls: Type[HeraldError], code: str, status: int, call: Callable[[], object]) -> None:
    """Runs a call that must raise ``cls`` with ``code`` and ``status``."""
    expected = f"{cls.__name__} code={code} status={status}"
    try:
        call()
    except HeraldError as error:
        got = f"{type(error).__name__} code={error.code} status={error.status}"
        if not isinstance(error, cls) or error.code != code or error.status != status:
            fail(f"{step}: expected {expected}, got {got} ({error.message})")
        print(f"{step}: got {got} as expected", file=sys.stderr)
        return
    except Exception as error:  # noqa: BLE001
        fail(f"{step}: expected {expected}, got {type(error).__name__}: {error}")
    fail(f"{step}: expected {expected}, the call succeeded")


def main() -> None:
    url = env("HERALD_URL")
    user = env("HERALD_TEST_USER")
    channel = env("HERALD_TEST_CHANNEL")
    tag = env("HERALD_TEST_TAG")
    client = Client(url, env("HERALD_API_KEY"), jwt_secret=env("HERALD_JWT_SECRET"), timeout=10.0)

    expect_id("notify_user", lambda: client.notify_user(user, "CLIENT:USER", {"lang": tag, "kind": "user"}))
    expect_id(
        "notify_channel",
        lambda: client.notify_channel(channel, "CLIENT:CHANNEL", {"lang": tag, "kind": "channel"}),
    )
    expect_id(
        "notify",
        lambda: client.notify({"users": [user], "channels": [channel]}, "CLIENT:BOTH", {"lang": tag, "kind": "both"}),
    )

    ids = client.notify_batch(
        [{"event": "CLIENT:BATCH", "targets": {"users": [user]}, "payload": {"lang": tag, "kind": "batch", "n": n}} for n in range(2)]
    )
    if len(ids) != 2 or not all(ids):
        fail(f"notify_batch returned {ids!r}")
    print(f"notify_batch: event ids {ids}", file=sys.stderr)

    # The user's history holds what was sent to it, oldest first; `since` reads on from there.
    history = client.history(user=user)
    names = [e["event"] for e in history["events"]]
    if names != ["CLIENT:USER", "CLIENT:BOTH", "CLIENT:BATCH", "CLIENT:BATCH"]:
        fail(f"history: {history!r}")
    first = history["events"][0]["pos"]["users"][user]
    after = client.history(user=user, since=first, limit=1)
    if after.get("recovered") is not True or after["more"] is not True or after["events"][0]["event"] != "CLIENT:BOTH":
        fail(f"history since: {after!r}")
    expect_error("bad position", BadRequestError, "bad_request", 400, lambda: client.history(channel=channel, since="not-a-position"))
    print("history: 4 events, since and limit", file=sys.stderr)

    wrong_key = Client(url, "wrong-key", timeout=10.0)
    expect_error(
        "wrong key",
        UnauthorizedError,
        "unauthorized",
        401,
        lambda: wrong_key.notify_user(user, "CLIENT:USER", {"lang": tag, "kind": "user"}),
    )
    expect_error(
        "oversized payload",
        TooLargeError,
        "too_large",
        413,
        lambda: client.notify_user(user, "CLIENT:USER", {"blob": "x" * 70000}),
    )

    try:
        token = client.mint_token(user, ["private-*"], 60)
    except Exception as error:  # noqa: BLE001
        fail(f"mint_token: expected a token, got {type(error).__name__}: {error}")
    print(f"TOKEN {token}")
    print("E2E OK", flush=True)


if __name__ == "__main__":
    main()
