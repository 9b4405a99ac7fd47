"""
What a request's outcome becomes in the `JourneyError` tree, the one place
of the mapping: an error status (`status_error`: the subclass for the
status, the server's own message, its request id), and a failure to get an
answer (`transport_error`). A 2xx body that does not parse is the
converter's `ResponseFormatError`, redacted by the client (``_parse``),
since only the client holds the token without showing it in a frame.

Everything quoted here is the server's, who may echo the token it was sent:
it is blotted out first, and only then cut short, so no prefix of it
survives a cut.
"""

from __future__ import annotations

import re
from typing import Final

import httpx

from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    JourneyError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    ResponseFormatError,
    ResponseTooLargeError,
    ServerError,
)
from ._http import MAX_REMOVAL_ACK_BYTES, ResponseTooLarge
from ._redaction import redact
from ._retry import parse_retry_after

__all__ = [
    "BODY_PREVIEW_CHARS",
    "PROXY_REFUSED",
    "REQUEST_ID_CHARS",
    "REQUEST_ID_HEADERS",
    "SERVER_MESSAGE_CHARS",
    "status_error",
    "transport_error",
]

_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
}

REQUEST_ID_HEADERS: Final = ("x-request-id", "request-id")
"""Where servers put their id for a request, first found wins."""

REQUEST_ID_CHARS: Final = 128
"""Characters of a request id kept: ids are UUID-sized; a hostile one is cut."""

BODY_PREVIEW_CHARS: Final = 80
"""Characters of a non-JSON error body quoted in the error's message."""

SERVER_MESSAGE_CHARS: Final = 500
"""Characters of the server's own ``message`` kept in the error's message: a
sentence or two, not a hostile server's megabyte."""

_UNPRINTABLE: Final = re.compile(r"[^\x21-\x7e]+")


def status_error(response: httpx.Response, *, secret: str | None = None) -> APIStatusError:
    """
    The `APIStatusError` subclass for an error response, with the server's
    own ``message`` when its body carries one, and *secret* blotted out of it
    (a server may quote the Authorization header it refused).
    """
    status = response.status_code
    cls = _STATUS_ERRORS.get(status, ServerError if 500 <= status <= 599 else APIStatusError)
    message = _server_message(response, secret)
    request_id = _request_id(response, secret)
    if cls is RateLimitError:
        return RateLimitError(
            message,
            status_code=status,
            response=response,
            request_id=request_id,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    return cls(message, status_code=status, response=response, request_id=request_id)


def _request_id(response: httpx.Response, secret: str | None) -> str | None:
    """The server's id for the request, printable ASCII only, or `None`."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value is not None:
            cleaned = _UNPRINTABLE.sub("?", redact(value.strip(), secret))
            return _cut(cleaned, REQUEST_ID_CHARS) or None
    return None


PROXY_REFUSED: Final = (
    "the proxy refused its credentials (407 Proxy Authentication Required): check the user "
    "and password of proxy= or of HTTPS_PROXY / HTTP_PROXY / ALL_PROXY"
)
"""The message of a 407, the proxy's answer rather than the API's: its page
says nothing more, and whatever it quotes may hold the credentials."""


def _server_message(response: httpx.Response, secret: str | None) -> str:
    if response.status_code == 407:
        return PROXY_REFUSED
    location = response.headers.get("Location")
    if 300 <= response.status_code <= 399 and location is not None:
        return _redirect_message(response, location, secret)
    reason = _cut(redact(response.reason_phrase, secret), SERVER_MESSAGE_CHARS) or "error"
    try:
        body = response.json()
    except (ValueError, RecursionError):
        text = redact(" ".join(response.text.split()), secret)
        if not text:
            return reason
        return f"{reason} (body is not JSON: {_cut(text, BODY_PREVIEW_CHARS)!r})"
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message:
        return _cut(redact(message, secret), SERVER_MESSAGE_CHARS)
    return reason


def _redirect_message(response: httpx.Response, location: str, secret: str | None) -> str:
    """A 3xx with a Location: where it points, and that it was not followed.
    Following it would send the token and a removal's body to wherever a
    gateway says, so a moved API is the caller's to point base_url at."""
    reason = _cut(redact(response.reason_phrase, secret), SERVER_MESSAGE_CHARS) or "redirect"
    target = _cut(_UNPRINTABLE.sub("?", redact(location.strip(), secret)), SERVER_MESSAGE_CHARS)
    return f"{reason}: redirect to {target!r} not followed (is base_url the API's root?)"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def transport_error(
    method: str, path: str, exc: httpx.TransportError | httpx.DecodingError
) -> JourneyError:
    """The error for a request that got no usable answer: timed out (an
    attempt's timeout or the call's deadline), an answer over its cap, a
    connection that failed, or a body that could not be decoded."""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{method} {path} timed out: {_describe(exc)}")
    if isinstance(exc, ResponseTooLarge):
        message = str(exc)
        if (
            method == "POST"
            and exc.cap == "max_response_bytes"
            and exc.limit == MAX_REMOVAL_ACK_BYTES
        ):
            # The removal's own cap, which max_response_bytes does not raise.
            message = (
                f"the removal's acknowledgement is over {exc.limit} bytes, a fixed cap: the API "
                'answers {"success": true}, so this is not the API answering (a proxy or a '
                "wrong base_url?)"
            )
        return ResponseTooLargeError(f"{method} {path}: {message}", cap=exc.cap, limit=exc.limit)
    if isinstance(exc, httpx.TransportError):
        return APIConnectionError(f"{method} {path} failed: {_describe(exc)}")
    # A body labelled gzip (say) that is not: often a proxy's own page.
    return ResponseFormatError(
        f"{method} {path}: the response body could not be decoded: {_describe(exc)}"
    )


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
