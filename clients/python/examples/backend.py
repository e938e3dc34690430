"""An example backend for Herald: serves RPCs (calc.double, calc.fail, calc.slow) at /rpc and
lifecycle webhooks at /hooks, with the stdlib's WSGI server.

    HERALD_BACKEND_SECRET=... HERALD_WEBHOOK_LOG=events.jsonl python3 backend.py 9000

Each webhook event is appended to HERALD_WEBHOOK_LOG as one JSON line (when set)."""

import json
import os
import sys
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from herald_client.backend import RpcError, wsgi_app

SECRET = os.environ["HERALD_BACKEND_SECRET"]
LOG = os.environ.get("HERALD_WEBHOOK_LOG")


def rpc(method, data, user, conn):
    if method == "calc.double":
        return data * 2
    if method == "calc.fail":
        raise RpcError("app_1001", "always fails")
    if method == "calc.slow":
        time.sleep(3)
        return "late"
    raise RpcError("not_found", f"no method {method}")


def on_events(events):
    if LOG:
        with open(LOG, "a", encoding="utf-8") as log:
            for event in events:
                log.write(json.dumps(event) + "\n")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    with make_server("127.0.0.1", port, wsgi_app(SECRET, rpc=rpc, on_events=on_events), handler_class=QuietHandler) as server:
        print(f"python backend listening on 127.0.0.1:{port}", flush=True)
        server.serve_forever()
