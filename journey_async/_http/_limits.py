"""
The size caps on a response, and the error a response over one of them ends
with. Every cap is here, named, so that what a hostile or broken server can
make the client hold is read in one place.
"""

from __future__ import annotations

from typing import Final

import httpx

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_BODY_PARTS",
    "MAX_HEAD_BYTES",
    "MAX_HEAD_LINE_BYTES",
    "MAX_REMOVAL_ACK_BYTES",
    "MAX_RESPONSE_BYTES_EXTENSION",
    "ResponseTooLarge",
    "add_part",
    "drop_over_cap",
]

MAX_HEAD_LINE_BYTES: Final[int] = 8190
"""The longest status line or header line of a response, in bytes: aiohttp's
``max_line_size`` and ``max_field_size``. An API's lines are a few dozen bytes;
a cookie or a long CSP header from a gateway fits easily."""

MAX_HEAD_BYTES: Final[int] = 65536
"""The whole response head (status line and every header), in bytes: h11's
16 KiB four times over, for gateways that add headers of their own."""

DEFAULT_MAX_RESPONSE_BYTES: Final[int] = 4 * 1024 * 1024
"""A response body, after decompression, in bytes. The largest statistics
response a journey plausibly has (a thousand points at a few hundred bytes
each) is under half a MiB; 4 MiB leaves it eight times over, while a runaway
or hostile body costs at most this much memory per request in flight."""

MAX_REMOVAL_ACK_BYTES: Final[int] = 64 * 1024
"""A removal's response body, in bytes. The API acknowledges with
``{"success": true}`` (or a 400 with a one-line message); 64 KiB still takes
the error page a gateway might answer with, and nothing bigger is an ack."""

MAX_BODY_PARTS: Final[int] = 64
"""The pieces a body is kept in, as they arrive, before later ones are merged
into one buffer. A piece is an object of its own, about 40 bytes besides its
content: a body at its cap sent in chunks of two bytes each would cost some 20
times the cap (87 MB for 4 MiB) as two million pieces. A body of a few reads
keeps its pieces as they are, with no copy."""


def add_part(parts: list[bytes | bytearray], data: bytes) -> None:
    """Keep *data*, the next piece of a body, in *parts*: as it is while
    *parts* holds fewer than `MAX_BODY_PARTS`, else merged into the last one."""
    if len(parts) < MAX_BODY_PARTS:
        parts.append(data)
        return
    last = parts[-1]
    if isinstance(last, bytearray):
        last += data
    else:
        parts.append(bytearray(data))


MAX_RESPONSE_BYTES_EXTENSION: Final = "journey_async.max_response_bytes"
"""The request extension that carries a request's own body cap (an `int`),
when it is not the transport's: a removal's acknowledgement gets a smaller one."""


class ResponseTooLarge(httpx.TransportError):
    """
    A response went over one of the caps above; the connection it came on is
    closed. Not retried: the same request would get the same response. (An
    error response's body over its cap is dropped instead: `drop_over_cap`.)

    Attributes:
        cap: Which cap: ``"max_response_bytes"``, ``"head line"`` or ``"head"``.
        limit: The cap, in bytes.
    """

    def __init__(self, message: str, *, cap: str, limit: int) -> None:
        super().__init__(message)
        self.cap = cap
        self.limit = limit


def body_too_large(limit: int) -> ResponseTooLarge:
    """The error for a body over *limit* bytes after decompression."""
    return ResponseTooLarge(
        f"the response body is over max_response_bytes ({limit} bytes, counted after "
        "decompression); raise it with AsyncJourneyClient(max_response_bytes=...)",
        cap="max_response_bytes",
        limit=limit,
    )


def drop_over_cap(status: int, limit: int) -> None:
    """
    The body of a response with *status* went over its cap of *limit* bytes.
    A success's body is the answer: `ResponseTooLarge` is raised. An error
    response's body is only the words of its message (a gateway's error page,
    a maintenance page with its images inlined), and its status is what the
    caller acts on (a 503 is retried, a 413 splits a removal): the caller
    drops the body, reads no more of it, and the response goes on without it.
    """
    if 200 <= status < 300:
        raise body_too_large(limit)


def head_too_large(cap: str, limit: int) -> ResponseTooLarge:
    """The error for a response head over a fixed cap."""
    what = "a line of the response head" if cap == "head line" else "the response head"
    return ResponseTooLarge(
        f"{what} is over {limit} bytes, a fixed cap: the Journey API's heads are far "
        "smaller, so this is not the API answering (a proxy or a wrong base_url?)",
        cap=cap,
        limit=limit,
    )


def check_head(raw_headers: list[tuple[bytes, bytes]]) -> None:
    """
    Apply the head caps to headers another HTTP parser read (httpcore's, on
    the handovers), whose own bound is only its buffer: `ResponseTooLarge`
    for a header line over `MAX_HEAD_LINE_BYTES` or headers over
    `MAX_HEAD_BYTES` in all, as the default transport's parser refuses them.
    """
    total = 0
    for name, value in raw_headers:
        line = len(name) + len(value) + 4  # ": " and CRLF
        if line > MAX_HEAD_LINE_BYTES:
            raise head_too_large("head line", MAX_HEAD_LINE_BYTES)
        total += line
    if total > MAX_HEAD_BYTES:
        raise head_too_large("head", MAX_HEAD_BYTES)


_H11_BUFFER_OVERFLOW: Final = "Receive buffer too long"
"""h11's words for a response head past httpcore's buffer (100 KiB): on the
handovers (trio, proxies) httpcore reads the head, and says so as a protocol
error."""


def is_h11_head_overflow(exc: Exception) -> bool:
    """Whether *exc* is httpcore's (h11's) refusal of a head past its buffer:
    past it, the head is past `MAX_HEAD_BYTES` too."""
    return isinstance(exc, httpx.RemoteProtocolError) and str(exc) == _H11_BUFFER_OVERFLOW
