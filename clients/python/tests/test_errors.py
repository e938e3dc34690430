"""Tests of the mapping from a canned HTTP answer to a typed exception."""

from __future__ import annotations

import json
import unittest

from herald_client import (
    BadRequestError,
    ForbiddenError,
    HeraldError,
    InternalError,
    NotFoundError,
    RateLimitedError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
    error_from_response,
)


class ErrorMappingTest(unittest.TestCase):
    def test_each_code_maps_to_its_class(self) -> None:
        cases = [
            ("bad_request", 400, BadRequestError),
            ("unauthorized", 401, UnauthorizedError),
            ("forbidden", 403, ForbiddenError),
            ("not_found", 404, NotFoundError),
            ("too_large", 413, TooLargeError),
            ("rate_limited", 429, RateLimitedError),
            ("unavailable", 503, UnavailableError),
            ("internal", 500, InternalError),
        ]
        for code, status, cls in cases:
            with self.subTest(code=code):
                body = json.dumps({"error": {"code": code, "message": f"msg {code}"}}).encode()
                error = error_from_response(status, body)
                self.assertIs(cls, type(error))
                self.assertIsInstance(error, HeraldError)
                self.assertEqual((code, status, f"msg {code}"), (error.code, error.status, error.message))

    def test_body_not_in_herald_shape_maps_by_status(self) -> None:
        error = error_from_response(502, b"<html>Bad Gateway</html>")
        self.assertIs(UnavailableError, type(error))
        self.assertEqual("unavailable", error.code)
        self.assertEqual("HTTP 502: <html>Bad Gateway</html>", error.message)

        error = error_from_response(413, b"")
        self.assertIs(TooLargeError, type(error))
        self.assertEqual(("too_large", "HTTP 413"), (error.code, error.message))

        self.assertIs(UnauthorizedError, type(error_from_response(401, '{"error":"nope"}')))

    def test_unknown_code_keeps_its_name(self) -> None:
        error = error_from_response(400, b'{"error":{"code":"bad_target","message":"m"}}')
        self.assertIs(BadRequestError, type(error))
        self.assertEqual("bad_target", error.code)

    def test_statuses_herald_never_sends(self) -> None:
        error = error_from_response(409, b"")
        self.assertIs(HeraldError, type(error))
        self.assertEqual("http_409", error.code)
        self.assertIs(InternalError, type(error_from_response(507, b"")))

    def test_retry_after_and_str(self) -> None:
        error = error_from_response(429, b'{"error":{"code":"rate_limited","message":"slow down"}}', 30)
        assert isinstance(error, RateLimitedError)
        self.assertEqual(30, error.retry_after)
        self.assertEqual("slow down (rate_limited, HTTP 429)", str(error))


if __name__ == "__main__":
    unittest.main()
