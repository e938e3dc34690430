"""Exceptions raised by the Herald client, one class per server error code, and the mapping from an HTTP answer."""

from __future__ import annotations

import json
import re
from typing import Dict, Optional, Type, Union

__all__ = [
    "HeraldError",
    "BadRequestError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "TooLargeError",
    "RateLimitedError",
    "UnavailableError",
    "InternalError",
    "error_from_response",
]


class HeraldError(Exception):
    """A Herald call that did not succeed.

    ``code`` is the machine-readable code the server sent (or the one its HTTP status implies
    when the answer had no Herald error body), ``status`` the HTTP status, 0 when no answer
    arrived at all, ``message`` the human-readable text.
    """

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(code, status, message)
        self.code = code
        self.status = status
        self.message = message

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no HTTP answer"
        return f"{self.message} ({self.code}, {where})"


class BadRequestError(HeraldError):
    """400: invalid event, user or channel name, bad targets, or JSON the server could not read."""


class UnauthorizedError(HeraldError):
    """401: the API key was missing or not accepted."""


class ForbiddenError(HeraldError):
    """403: the credentials are valid but do not allow this call."""


class NotFoundError(HeraldError):
    """404: no such resource or route (e.g. a server too old to have this endpoint)."""


class TooLargeError(HeraldError):
    """413: the request body exceeded the server's payload limit (64 KiB by default)."""


class RateLimitedError(HeraldError):
    """429: too many requests; ``retry_after`` is the server's Retry-After in seconds, when given."""

    def __init__(self, code: str, status: int, message: str, retry_after: Optional[int] = None) -> None:
        super().__init__(code, status, message)
        self.retry_after = retry_after


class UnavailableError(HeraldError):
    """503 (or a proxy's 502/504), or no answer at all (status 0: refused, DNS failure, timeout).

    Safe to retry later; after a timeout the event may nevertheless have been accepted.
    """


class InternalError(HeraldError):
    """500: the server failed while handling the request."""


_CLASS_BY_CODE: Dict[str, Type[HeraldError]] = {
    "bad_request": BadRequestError,
    "unauthorized": UnauthorizedError,
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "too_large": TooLargeError,
    "rate_limited": RateLimitedError,
    "unavailable": UnavailableError,
    "internal": InternalError,
}

# The code a status implies when the body does not say (a proxy page, a bare 404). A load
# balancer answers 502/504 when no Herald is reachable: to the caller that is Herald's 503.
_CODE_BY_STATUS: Dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "too_large",
    429: "rate_limited",
    500: "internal",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}


def error_from_response(status: int, body: Union[bytes, str], retry_after: Optional[int] = None) -> HeraldError:
    """Builds the exception for a non-2xx answer.

    A known code in a ``{"error": {"code", "message"}}`` body picks the class, being the server's
    most precise statement; otherwise the status does. An unknown code is kept verbatim. A status
    Herald never sends gives a plain ``HeraldError`` with code ``http_<status>`` (5xx: ``InternalError``).
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    code: Optional[str] = None
    message: Optional[str] = None
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), dict):
        error = decoded["error"]
        if isinstance(error.get("code"), str) and error["code"]:
            code = error["code"]
        if isinstance(error.get("message"), str):
            message = error["message"]

    cls = _CLASS_BY_CODE.get(code or "")
    if cls is None:
        implied = _CODE_BY_STATUS.get(status, "internal" if status >= 500 else None)
        cls = _CLASS_BY_CODE[implied] if implied else HeraldError
        if code is None:
            code = implied or f"http_{status}"
    final_code: str = code or f"http_{status}"  # never empty by now; spelled out for type checkers
    if message is None:
        message = _describe_body(status, text)

    if cls is RateLimitedError:
        return RateLimitedError(final_code, status, message, retry_after)
    return cls(final_code, status, message)


def _describe_body(status: int, text: str) -> str:
    """A readable message for an answer without a Herald error body: the status and a snippet."""
    snippet = re.sub(r"\s+", " ", text).strip()
    if len(snippet) > 200:
        snippet = snippet[:200] + "..."
    return f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
