"""Tests of local JWT minting: known answer, header and claims, and an independently computed HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import unittest

from herald_client import Client, encode_hs256

# Computed independently (openssl); the PHP and Java clients check the same bytes.
KNOWN_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJhbGljZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwLCJjaGFubmVscyI6WyJwcml2YXRlLSoiXX0"
    ".aNjrGcUqKhtKrqkUqwR1PFG8qp3HLJAy52ZtKZch3Ys"
)


def b64url_decode(text: str) -> bytes:
    """Base64url decoding written here, independent of the client's encoder."""
    return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)


class TokenTest(unittest.TestCase):
    def test_known_answer(self) -> None:
        claims = {"sub": "alice", "iat": 1700000000, "exp": 1700003600, "channels": ["private-*"]}
        self.assertEqual(KNOWN_TOKEN, encode_hs256(claims, "test-secret"))

    def test_mint_token_header_claims_and_signature(self) -> None:
        client = Client("http://127.0.0.1:1", "key", jwt_secret="s3cret")
        before = int(time.time())
        token = client.mint_token("bob", ["private-*", "team-1"], 120)
        after = int(time.time())

        self.assertRegex(token, r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")  # no padding
        header, claims_part, signature = token.split(".")
        self.assertEqual({"alg": "HS256", "typ": "JWT"}, json.loads(b64url_decode(header)))
        claims = json.loads(b64url_decode(claims_part))
        self.assertEqual("bob", claims["sub"])
        self.assertEqual(["private-*", "team-1"], claims["channels"])
        self.assertTrue(before <= claims["iat"] <= after)
        self.assertEqual(120, claims["exp"] - claims["iat"])
        expected = hmac.new(b"s3cret", f"{header}.{claims_part}".encode(), hashlib.sha256).digest()
        self.assertEqual(expected, b64url_decode(signature))

    def test_no_channels_claim_when_none_granted(self) -> None:
        token = Client("http://x", "k", jwt_secret="s").mint_token("carol")
        claims = json.loads(b64url_decode(token.split(".")[1]))
        self.assertNotIn("channels", claims)
        self.assertEqual(3600, claims["exp"] - claims["iat"])

    def test_refuses_without_secret_or_with_bad_arguments(self) -> None:
        with self.assertRaises(ValueError):
            Client("http://x", "k").mint_token("u")
        client = Client("http://x", "k", jwt_secret="s")
        with self.assertRaises(ValueError):
            client.mint_token("u", ttl_seconds=0)
        with self.assertRaises(ValueError):
            client.mint_token("")
        with self.assertRaises(TypeError):
            client.mint_token("u", "private-*")  # a str is a Sequence[str], hence the runtime check

    def test_padding_never_appears(self) -> None:
        # Claims of every length modulo 3 exercise each padding case of base64.
        for n in range(6):
            token = encode_hs256({"sub": "u" * n}, "k")
            self.assertIsNone(re.search(r"[=+/]", token), token)


if __name__ == "__main__":
    unittest.main()
