"""Python client for Herald's REST API v1: push events to users, channels or everyone, and mint client tokens."""

__version__ = "0.1.0"

from .client import Client  # noqa: E402  (after __version__, which client.py reads)
from .errors import (  # noqa: E402
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
from .tokens import encode_hs256  # noqa: E402

__all__ = [
    "__version__",
    "Client",
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
    "encode_hs256",
]
