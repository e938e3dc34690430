"""Minimal HS256 JSON Web Token encoder, so a backend can mint Herald tokens without a JWT library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Mapping, Union

__all__ = ["encode_hs256", "base64url"]

_HEADER = {"alg": "HS256", "typ": "JWT"}


def base64url(data: bytes) -> str:
    """Base64url without padding, as JWT requires."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: Any) -> bytes:
    # Compact separators: the same bytes as the PHP and Java clients produce for the same claims.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_hs256(claims: Mapping[str, Any], secret: Union[str, bytes]) -> str:
    """Encodes ``claims`` (order preserved) and signs them with HMAC-SHA256 under ``secret``.

    Only signing: verifying tokens is the Herald server's job.
    """
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    signing_input = base64url(_json(_HEADER)) + "." + base64url(_json(dict(claims)))
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + base64url(signature)
