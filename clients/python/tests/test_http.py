"""Tests of the HTTP exchange against a fixture server on a free loopback port that impersonates Herald."""

from __future__ import annotations

import json
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List

from herald_client import (
    Client,
    HeraldError,
    RateLimitedError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
)


class _Fixture(BaseHTTPRequestHandler):
    """Answers by the first path segment, the scenario; records every request it reads."""

    protocol_version = "HTTP/1.1"
    seen: List[Dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _answer(self, status: int, body: bytes, headers: Dict[str, str] = {}) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        parts = self.path.lstrip("/").split("/")
        scenario = parts[0]
        if scenario == "early413":
            # Like a server that judges Content-Length alone: answer, close, never read the body.
            self.close_connection = True
            return self._answer(413, b'{"error":{"code":"too_large","message":"too big"}}', {"Connection": "close"})
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body.decode("utf-8")})
        if scenario == "ok":
            self._answer(202, b'{"id":"evt-42"}')
        elif scenario == "err":  # /err/{status}/{code}/...
            error = {"error": {"code": parts[2], "message": "server says " + parts[2]}}
            self._answer(int(parts[1]), json.dumps(error).encode())
        elif scenario == "plain":  # /plain/{status}/...: a proxy's page
            self._answer(int(parts[1]), b"<html>upstream went away</html>", {"Content-Type": "text/html"})
        elif scenario == "retry":
            self._answer(429, b'{"error":{"code":"rate_limited","message":"slow down"}}', {"Retry-After": "7"})
        elif scenario == "slow":
            time.sleep(1)
            self._answer(202, b'{"id":"late"}')
        elif scenario == "noid":
            self._answer(200, b'{"ok":true}')
        elif scenario == "redirect":
            self._answer(307, b"", {"Location": "/ok/v1/notify"})
        else:
            self._answer(404, b"")


def _free_port() -> int:
    """A port nothing listens on right now (bound by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpTest(unittest.TestCase):
    server: ThreadingHTTPServer
    base: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), _Fixture)
        cls.server.daemon_threads = True
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self) -> None:
        _Fixture.seen.clear()

    def last(self) -> Dict[str, Any]:
        self.assertTrue(_Fixture.seen, "the fixture server saw a request")
        return _Fixture.seen[-1]

    def test_notify_user_sends_the_documented_request(self) -> None:
        client = Client(self.base + "/ok/", "the-key")
        self.assertEqual("evt-42", client.notify_user("alice", "MESSAGE:NEW", {"text": "héllo/€", "n": 1.5}))
        seen = self.last()
        self.assertEqual("/ok/v1/notify/user/alice", seen["path"])
        self.assertEqual("Bearer the-key", seen["headers"]["Authorization"])
        self.assertEqual("application/json", seen["headers"]["Content-Type"])
        self.assertEqual('{"event":"MESSAGE:NEW","payload":{"text":"héllo/€","n":1.5}}', seen["body"])

    def test_notify_channel(self) -> None:
        self.assertEqual("evt-42", Client(self.base + "/ok", "k").notify_channel("chat", "E", {}))
        self.assertEqual("/ok/v1/notify/channel/chat", self.last()["path"])
        self.assertEqual('{"event":"E","payload":{}}', self.last()["body"])

    def test_notify_with_users_and_channels(self) -> None:
        client = Client(self.base + "/ok", "k")
        self.assertEqual("evt-42", client.notify({"users": ("bob",), "channels": ["chat"]}, "E", [1, 2]))
        self.assertEqual("/ok/v1/notify", self.last()["path"])
        self.assertEqual(
            '{"event":"E","targets":{"users":["bob"],"channels":["chat"]},"payload":[1,2]}', self.last()["body"]
        )
        with self.assertRaises(ValueError):
            client.notify({}, "E")
        with self.assertRaises(TypeError):
            client.notify({"users": "bob"}, "E")

    def test_broadcast(self) -> None:
        self.assertEqual("evt-42", Client(self.base + "/ok", "k").broadcast("E"))
        self.assertEqual('{"event":"E","targets":{"broadcast":true},"payload":null}', self.last()["body"])

    def test_names_are_percent_encoded_except_colon_and_at(self) -> None:
        Client(self.base + "/ok", "k").notify_user("a b/c:d@e", "E")
        self.assertEqual("/ok/v1/notify/user/a%20b%2Fc:d@e", self.last()["path"])
        with self.assertRaises(ValueError):
            Client(self.base + "/ok", "k").notify_channel("", "E")

    def test_herald_error_body_becomes_typed_exception(self) -> None:
        with self.assertRaises(UnauthorizedError) as caught:
            Client(self.base + "/err/401/unauthorized", "k").notify_user("u", "E")
        error = caught.exception
        self.assertEqual(("unauthorized", 401, "server says unauthorized"), (error.code, error.status, error.message))

    def test_large_body_rejected_with_413(self) -> None:
        with self.assertRaises(TooLargeError) as caught:
            Client(self.base + "/err/413/too_large", "k").notify_user("u", "E", {"blob": "x" * 70000})
        self.assertEqual(413, caught.exception.status)

    def test_413_answered_before_the_body_is_read(self) -> None:
        with self.assertRaises(TooLargeError) as caught:
            Client(self.base + "/early413", "k").notify_user("u", "E", {"blob": "x" * 70000})
        self.assertEqual(("too_large", 413), (caught.exception.code, caught.exception.status))

    def test_proxy_page_maps_by_status(self) -> None:
        with self.assertRaises(UnavailableError) as caught:
            Client(self.base + "/plain/503", "k").broadcast("E")
        self.assertEqual(("unavailable", 503), (caught.exception.code, caught.exception.status))

    def test_retry_after_header(self) -> None:
        with self.assertRaises(RateLimitedError) as caught:
            Client(self.base + "/retry", "k").broadcast("E")
        self.assertEqual(7, caught.exception.retry_after)

    def test_connection_refused_is_unavailable_with_status_0(self) -> None:
        with self.assertRaises(UnavailableError) as caught:
            Client(f"http://127.0.0.1:{_free_port()}", "k").broadcast("E")
        self.assertEqual(("unavailable", 0), (caught.exception.code, caught.exception.status))

    def test_timeout_is_unavailable_with_status_0(self) -> None:
        start = time.monotonic()
        with self.assertRaises(UnavailableError) as caught:
            Client(self.base + "/slow", "k", timeout=0.2).broadcast("E")
        self.assertEqual(0, caught.exception.status)
        self.assertLess(time.monotonic() - start, 0.9)

    def test_2xx_without_event_id_is_an_error(self) -> None:
        with self.assertRaises(HeraldError) as caught:
            Client(self.base + "/noid", "k").broadcast("E")
        self.assertEqual(("invalid_response", 200), (caught.exception.code, caught.exception.status))

    def test_redirect_is_not_followed(self) -> None:
        with self.assertRaises(HeraldError) as caught:
            Client(self.base + "/redirect", "k").broadcast("E")
        self.assertEqual(("http_307", 307), (caught.exception.code, caught.exception.status))
        self.assertEqual(1, len(_Fixture.seen))

    def test_bad_arguments_are_rejected_locally(self) -> None:
        with self.assertRaises(ValueError):
            Client("127.0.0.1:8081", "k")
        with self.assertRaises(ValueError):
            Client("http://x", "k", timeout=0)
        with self.assertRaises(ValueError):
            Client("http://x", "k").broadcast("E", float("nan"))
        with self.assertRaises(TypeError):
            Client("http://x", "k").broadcast("E", object())


if __name__ == "__main__":
    unittest.main()
