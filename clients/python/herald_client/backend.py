"""What a backend needs when Herald calls it: verify the ``X-Herald-Signature`` of a webhook or
RPC call, read a webhook's events, and answer an RPC — framework-neutral (raw body bytes and a
header value in, status and body bytes out), plus a small WSGI app built on them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any, Callable, Iterable, List, Mapping, Optional, Tuple, Union

__all__ = [
    "RpcError",
    "SignatureError",
    "sign",
    "verify_signature",
    "parse_webhook",
    "handle_rpc",
    "wsgi_app",
]

SIGNATURE_HEADER = "X-Herald-Signature"

# Codes a backend may answer an RPC with: Herald's own, or an application code app_1000..app_1999.
_HERALD_CODES = frozenset(
    ["bad_request", "unauthorized", "forbidden", "not_found", "too_large", "rate_limited", "unavailable", "internal"]
)
_APP_CODE = re.compile(r"^app_1[0-9]{3}$")


class SignatureError(Exception):
    """The request does not carry a valid ``X-Herald-Signature`` for this secret."""


class RpcError(Exception):
    """Raised by an RPC handler to answer ``{"error":{"code","message"}}``; the browser's promise
    rejects with this code and message. ``code`` is one of Herald's codes or ``app_1000`` ..
    ``app_1999``."""

    def __init__(self, code: str, message: str) -> None:
        if code not in _HERALD_CODES and not _APP_CODE.match(code):
            raise ValueError(f"RPC error code {code!r}: use one of Herald's codes or app_1000 to app_1999")
        super().__init__(message)
        self.code = code
        self.message = message


def _key(secret: Union[str, bytes]) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: Union[str, bytes], body: bytes) -> str:
    """The ``X-Herald-Signature`` value of ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: Union[str, bytes], body: bytes, header: Optional[str]) -> bool:
    """Whether ``header`` (the ``X-Herald-Signature`` value) signs the exact ``body`` bytes."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), header.strip().encode("ascii", "replace"))


def parse_webhook(secret: Union[str, bytes], body: bytes, header: Optional[str]) -> List[Mapping[str, Any]]:
    """The events of a webhook POST, once its signature checked. Raises :class:`SignatureError`
    (answer 401) or ``ValueError`` (answer 400). Drop events whose ``id`` you have seen: delivery
    is at least once."""
    if not verify_signature(secret, body, header):
        raise SignatureError("X-Herald-Signature does not match this body and secret")
    decoded = json.loads(body.decode("utf-8"))
    events = decoded.get("events") if isinstance(decoded, dict) else None
    if not isinstance(events, list):
        raise ValueError('a webhook body is {"events": [...]}')
    return events


Handler = Callable[[str, Any, str, str], Any]


def handle_rpc(secret: Union[str, bytes], body: bytes, header: Optional[str], handler: Handler) -> Tuple[int, bytes]:
    """Answers one RPC call: checks the signature, calls ``handler(method, data, user, conn)``
    and returns ``(status, body)`` to send: 200 ``{"result": …}``, 200 ``{"error": …}`` when the
    handler raised :class:`RpcError`, 401 on a bad signature, 400 on a malformed call. Any other
    exception becomes ``internal`` (its text stays in your logs, not in the answer)."""
    if not verify_signature(secret, body, header):
        return 401, b'{"error":{"code":"unauthorized","message":"bad signature"}}'
    try:
        call = json.loads(body.decode("utf-8"))
        method, user, conn = call["method"], call["user"], call["conn"]
        data = call.get("data")
    except (ValueError, KeyError, TypeError):
        return 400, b'{"error":{"code":"bad_request","message":"not an RPC call"}}'
    try:
        answer: Mapping[str, Any] = {"result": handler(method, data, user, conn)}
    except RpcError as error:
        answer = {"error": {"code": error.code, "message": error.message}}
    except Exception:  # noqa: BLE001 - the handler's bug must not become a hanging call
        answer = {"error": {"code": "internal", "message": "the backend failed"}}
    return 200, json.dumps(answer, separators=(",", ":")).encode("utf-8")


def wsgi_app(
    secret: Union[str, bytes],
    rpc: Optional[Handler] = None,
    on_events: Optional[Callable[[List[Mapping[str, Any]]], None]] = None,
    rpc_path: str = "/rpc",
    hooks_path: str = "/hooks",
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving Herald's calls: RPCs at ``rpc_path`` (with ``rpc``) and webhooks at
    ``hooks_path`` (each batch's events passed to ``on_events``; raise to have Herald retry)."""

    def app(environ: Mapping[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        header = environ.get("HTTP_X_HERALD_SIGNATURE")
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST":
            status, answer = 405, b'{"error":{"code":"bad_request","message":"POST only"}}'
        elif path == rpc_path and rpc is not None:
            status, answer = handle_rpc(secret, body, header, rpc)
        elif path == hooks_path and on_events is not None:
            try:
                on_events(parse_webhook(secret, body, header))
                status, answer = 200, b"{}"
            except SignatureError:
                status, answer = 401, b'{"error":{"code":"unauthorized","message":"bad signature"}}'
            except ValueError:
                status, answer = 400, b'{"error":{"code":"bad_request","message":"not a webhook batch"}}'
        else:
            status, answer = 404, b'{"error":{"code":"not_found","message":"no such path"}}'
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
        start_response(f"{status} {reason.get(status, 'Error')}", [("Content-Type", "application/json")])
        return [answer]

    return app
