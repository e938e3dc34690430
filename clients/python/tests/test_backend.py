"""Unit tests of the backend helpers: the signature vector every Herald client shares, webhook
parsing, RPC answers and the WSGI app."""

import io
import json
import unittest

from herald_client import Client
from herald_client.backend import RpcError, SignatureError, handle_rpc, parse_webhook, sign, verify_signature, wsgi_app

# The vector shared by the Rust, PHP, Java and Python tests.
SECRET = "herald-shared-test-secret"
BODY = b'{"method":"calc.double","data":10,"user":"alice","conn":"g-1"}'
SIGNATURE = "sha256=ca5ab0e0a12c99ee841484ea8316b1e24b852bf0b9c806e3a197e0c8d064de39"


def handler(method, data, user, conn):
    if method == "calc.fail":
        raise RpcError("app_1001", "always fails")
    if method == "calc.bug":
        raise KeyError("secret detail")
    return {"doubled": data * 2, "user": user, "conn": conn}


class SignatureTests(unittest.TestCase):
    def test_the_shared_vector(self):
        self.assertEqual(sign(SECRET, BODY), SIGNATURE)
        self.assertTrue(verify_signature(SECRET, BODY, SIGNATURE))
        self.assertTrue(verify_signature(SECRET.encode(), BODY, " " + SIGNATURE))
        self.assertFalse(verify_signature(SECRET, BODY + b" ", SIGNATURE))
        self.assertFalse(verify_signature("other-secret", BODY, SIGNATURE))
        self.assertFalse(verify_signature(SECRET, BODY, None))
        self.assertFalse(verify_signature(SECRET, BODY, "sha256=é"))


class WebhookTests(unittest.TestCase):
    def test_events_come_out_once_signed(self):
        body = b'{"events":[{"id":"e1","type":"online","time_ms":1,"user":"alice"}]}'
        events = parse_webhook(SECRET, body, sign(SECRET, body))
        self.assertEqual(events, [{"id": "e1", "type": "online", "time_ms": 1, "user": "alice"}])
        with self.assertRaises(SignatureError):
            parse_webhook(SECRET, body, sign("other", body))
        with self.assertRaises(ValueError):
            parse_webhook(SECRET, b"[1]", sign(SECRET, b"[1]"))


class RpcTests(unittest.TestCase):
    def call(self, method, data=10):
        body = json.dumps({"method": method, "data": data, "user": "alice", "conn": "g-1"}).encode()
        status, answer = handle_rpc(SECRET, body, sign(SECRET, body), handler)
        return status, json.loads(answer)

    def test_results_and_coded_errors(self):
        self.assertEqual(self.call("calc.double"), (200, {"result": {"doubled": 20, "user": "alice", "conn": "g-1"}}))
        self.assertEqual(self.call("calc.fail"), (200, {"error": {"code": "app_1001", "message": "always fails"}}))
        status, answer = self.call("calc.bug")
        self.assertEqual((status, answer["error"]["code"]), (200, "internal"))
        self.assertNotIn("secret detail", json.dumps(answer))

    def test_bad_signature_and_bad_calls(self):
        self.assertEqual(handle_rpc(SECRET, BODY, "sha256=00", handler)[0], 401)
        self.assertEqual(handle_rpc(SECRET, b"{}", sign(SECRET, b"{}"), handler)[0], 400)

    def test_error_codes_are_checked(self):
        with self.assertRaises(ValueError):
            RpcError("app_2000", "out of range")
        with self.assertRaises(ValueError):
            RpcError("teapot", "not a code")
        self.assertEqual(RpcError("forbidden", "no").code, "forbidden")


class WsgiTests(unittest.TestCase):
    def test_routes(self):
        seen = []
        app = wsgi_app(SECRET, rpc=handler, on_events=seen.extend)

        def post(path, body, signature):
            statuses = []
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": path,
                "CONTENT_LENGTH": str(len(body)),
                "wsgi.input": io.BytesIO(body),
                "HTTP_X_HERALD_SIGNATURE": signature,
            }
            answer = b"".join(app(environ, lambda status, headers: statuses.append(status)))
            return statuses[0], answer

        status, answer = post("/rpc", BODY, SIGNATURE)
        self.assertEqual((status, json.loads(answer)["result"]["doubled"]), ("200 OK", 20))
        hook = b'{"events":[{"id":"e2","type":"join"}]}'
        self.assertEqual(post("/hooks", hook, sign(SECRET, hook))[0], "200 OK")
        self.assertEqual(seen, [{"id": "e2", "type": "join"}])
        self.assertEqual(post("/hooks", hook, "sha256=bad")[0], "401 Unauthorized")
        self.assertEqual(post("/elsewhere", hook, "")[0], "404 Not Found")


class BatchArgumentTests(unittest.TestCase):
    def test_batch_sizes_are_checked_before_any_request(self):
        client = Client("http://127.0.0.1:9", "key")
        with self.assertRaises(ValueError):
            client.notify_batch([])
        with self.assertRaises(ValueError):
            client.notify_batch([{"event": "E", "targets": {"users": ["u"]}}] * 101)


if __name__ == "__main__":
    unittest.main()
