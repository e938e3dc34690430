"""Herald REST API v1 client: pushes events to users, channels or everyone, and mints client tokens."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import __version__
from .errors import HeraldError, UnavailableError, error_from_response
from .tokens import encode_hs256

__all__ = ["Client"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuses redirects: urllib would turn a redirected POST into a GET without the event."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class Client:
    """Talks to a Herald REST adapter (``POST /v1/notify...``) with an API key.

    Every notify method returns the event id from the server's ``202 {"id": ...}`` answer. A 2xx
    means NATS accepted the event, so it is not silently dropped; anything else raises a
    :class:`~herald_client.HeraldError` subclass. The client keeps no connection state and is
    safe to share between threads.

    :param base_url: REST base URL, e.g. ``http://127.0.0.1:8081`` (a path prefix is kept)
    :param api_key: sent as ``Authorization: Bearer <key>``
    :param jwt_secret: the server's JWT secret, needed only by :meth:`mint_token`
    :param timeout: seconds before a request is abandoned (raised as ``UnavailableError``)
    """

    def __init__(self, base_url: str, api_key: str, jwt_secret: Optional[str] = None, timeout: float = 5.0) -> None:
        if not base_url.lower().startswith(("http://", "https://")):
            raise ValueError(f"Herald base URL must start with http:// or https://, got {base_url!r}")
        if timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        if jwt_secret is not None and not jwt_secret:
            raise ValueError("jwt_secret must be a non-empty string")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._jwt_secret = jwt_secret
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect())

    def __repr__(self) -> str:
        # The API key and secret stay out of logs and tracebacks.
        return f"Client(base_url={self.base_url!r}, timeout={self.timeout!r})"

    def notify_user(self, user: str, event: str, payload: Any = None) -> str:
        """Sends ``event`` to every connection identified as ``user``; returns the event id."""
        return self._post("/v1/notify/user/" + _path_segment(user, "user"), {"event": event, "payload": payload})

    def notify_channel(self, channel: str, event: str, payload: Any = None) -> str:
        """Sends ``event`` to every connection that joined ``channel``; returns the event id."""
        return self._post(
            "/v1/notify/channel/" + _path_segment(channel, "channel"), {"event": event, "payload": payload}
        )

    def notify(self, targets: Mapping[str, Any], event: str, payload: Any = None) -> str:
        """Sends ``event`` to several targets at once; returns the event id.

        ``targets`` is ``{"users": [...], "channels": [...]}`` (a connection reached twice gets the
        event once) or ``{"broadcast": True}`` for every identified connection.
        """
        if not targets:
            raise ValueError("targets must name users, channels or broadcast")
        body_targets: Dict[str, Any] = dict(targets)
        for kind in ("users", "channels"):
            if kind in body_targets:
                names = body_targets[kind]
                if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple, set, frozenset)):
                    # A bare string would otherwise be sent as a string, not a one-name list.
                    raise TypeError(f"targets[{kind!r}] must be a list of names, got {type(names).__name__}")
                body_targets[kind] = list(names)
        return self._post("/v1/notify", {"event": event, "targets": body_targets, "payload": payload})

    def broadcast(self, event: str, payload: Any = None) -> str:
        """Sends ``event`` to every identified connection; returns the event id."""
        return self.notify({"broadcast": True}, event, payload)

    def notify_batch(self, notifications: Sequence[Mapping[str, Any]]) -> List[str]:
        """Sends up to 100 notify bodies (``{"event", "targets", "payload"}``) in one request;
        Herald publishes them in order. Returns their ids in the same order. If any item is
        invalid, nothing is sent and :class:`~herald_client.BadRequestError` (or
        ``TooLargeError``) names the bad items in its message."""
        if isinstance(notifications, Mapping) or not 1 <= len(notifications) <= 100:
            raise ValueError("notifications must be a list of 1 to 100 notify bodies")
        status, decoded = self._post_json("/v1/notify/batch", {"notifications": list(notifications)})
        ids = decoded.get("ids")
        if not isinstance(ids, list) or len(ids) != len(notifications):
            raise HeraldError("invalid_response", status, "batch answer without one id per item")
        return [str(i) for i in ids]

    def history(
        self,
        *,
        channel: Optional[str] = None,
        user: Optional[str] = None,
        since: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Reads a channel's or a user's history (``GET /v1/channels/{c}/history`` or
        ``GET /v1/users/{u}/history``): ``{"events": [...], "pos": ..., "more": bool}``.

        Without ``since``, the newest events; with it (a ``pos`` from an event or an earlier
        answer), the events after it and ``recovered`` (False: some may be gone, none returned).
        ``limit``: at most this many events (0 to 1000; 0 answers only ``pos``).
        """
        if (channel is None) == (user is None):
            raise ValueError("give exactly one of channel= and user=")
        if channel is not None:
            path = f"/v1/channels/{_path_segment(channel, 'channel')}/history"
        else:
            path = f"/v1/users/{_path_segment(user or '', 'user')}/history"
        query = {k: v for k, v in (("since", since), ("limit", limit)) if v is not None}
        if query:
            path += "?" + urllib.parse.urlencode(query)
        status, answer = self._send(path, None)
        try:
            decoded = json.loads(answer.decode("utf-8"))
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict) or not isinstance(decoded.get("events"), list):
            raise HeraldError("invalid_response", status, f"HTTP {status} without events in the answer")
        return decoded

    def mint_token(self, user: str, channels: Sequence[str] = (), ttl_seconds: int = 3600) -> str:
        """Mints an HS256 token for a browser's ``ident`` frame, signed locally with ``jwt_secret``.

        Claims: ``sub`` (the user), ``iat``, ``exp`` (now + ``ttl_seconds``) and, when non-empty,
        ``channels`` (glob patterns the user may join, e.g. ``"private-*"``). No network call.
        """
        if self._jwt_secret is None:
            raise ValueError("mint_token() needs the client's jwt_secret")
        if not user:
            raise ValueError("user must not be empty")
        if isinstance(channels, str):
            raise TypeError("channels must be a list of patterns, not a string")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = int(time.time())
        claims: Dict[str, Any] = {"sub": user, "iat": now, "exp": now + ttl_seconds}
        if channels:
            claims["channels"] = list(channels)
        return encode_hs256(claims, self._jwt_secret)

    # ---- transport ----------------------------------------------------------------------------

    def _post(self, path: str, body: Dict[str, Any]) -> str:
        """POSTs a JSON body and returns the event id of the 2xx answer, or raises."""
        status, decoded = self._post_json(path, body)
        event_id = decoded.get("id")
        if isinstance(event_id, bool) or not isinstance(event_id, (str, int)) or event_id == "":
            # A 2xx without an id is not Herald (a wrong base URL hitting some other service?).
            raise HeraldError("invalid_response", status, f"HTTP {status} without an event id in the answer")
        return str(event_id)

    def _post_json(self, path: str, body: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        """POSTs a JSON body and returns the status and JSON object of the 2xx answer, or raises."""
        # allow_nan=False: NaN is not JSON, and the server would answer a vague bad_request.
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        status, answer = self._send(path, data)
        try:
            decoded = json.loads(answer.decode("utf-8"))
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            decoded = {}
        return status, decoded

    def _send(self, path: str, data: Optional[bytes]) -> Tuple[int, bytes]:
        """Performs the request (a POST of ``data``, or a GET without); returns (status, body)
        of a 2xx, raises for anything else."""
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method="POST" if data is not None else "GET",
            headers={
                "Authorization": "Bearer " + self._api_key,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "herald-python/" + __version__,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                body = _read_quietly(error)
            raise error_from_response(error.code, body, _retry_after(error.headers.get("Retry-After"))) from None
        except urllib.error.URLError as error:
            raise UnavailableError("unavailable", 0, f"Herald unreachable: {error.reason}") from error
        except (socket.timeout, OSError, http.client.HTTPException) as error:
            # Timeouts while reading the answer, resets, malformed answers: no usable HTTP answer.
            raise UnavailableError("unavailable", 0, f"Herald unreachable: {error!r}") from error


def _path_segment(name: str, what: str) -> str:
    """Percent-encodes a name for one path segment.

    Valid Herald names (letters, digits, ``_-.:@``) pass unchanged (``:`` and ``@`` are legal in a
    segment); anything else is encoded, so the server sees the name as given and answers
    bad_request rather than routing somewhere else.
    """
    if not name:
        raise ValueError(f"{what} name must not be empty")
    return urllib.parse.quote(name, safe=":@")


def _read_quietly(error: urllib.error.HTTPError) -> bytes:
    """The error answer's body, or nothing if the connection broke while reading it."""
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""


def _retry_after(value: Optional[str]) -> Optional[int]:
    """Seconds from a Retry-After header in its delta-seconds form; None otherwise."""
    if value is not None and value.strip().isdigit():
        return int(value.strip())
    return None
