"""
HTTP/1.1 on the wire: a request as the bytes that go out, and responses
parsed by llhttp (the C parser of Node.js, through httptools) from the bytes
that come in.

Nothing here does I/O: `serialize_request` returns bytes, and a
`ResponseParser` is fed bytes and hands each complete response to a callback,
its body decoded and every part of it within the caps of `_limits`. That
keeps the rules of the format in one place, testable without a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeAlias

import httptools
import httpx

from ._decoding import Decoder, Overflow, decoder_for, drop_undecodable
from ._limits import (
    MAX_BODY_PARTS,
    MAX_HEAD_BYTES,
    MAX_HEAD_LINE_BYTES,
    add_part,
    body_too_large,
    drop_over_cap,
    head_too_large,
)
from ._tls import WrongScheme

__all__ = [
    "PREPARED_HEAD_EXTENSION",
    "Headers",
    "ParsedResponse",
    "RequestBytes",
    "ResponseParser",
    "delimited_by_close",
    "header_lines",
    "is_chunked",
    "request_line",
    "serialize_request",
]

Headers: TypeAlias = list[tuple[bytes, bytes]]


class RequestBytes(bytes):
    """
    A request as it goes on the wire. Its repr shows the size only: the head
    holds the Authorization header, and tracebacks that print their frames'
    locals (Sentry, rich, ``capture_locals=True``) print every repr.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} request bytes>"


def serialize_request(request: httpx.Request, body: bytes) -> RequestBytes:
    """
    *request* as it goes on the wire, with *body* (its whole content),
    refusing anything that would let a header or the method smuggle in
    another request.

    No local here holds the header bytes in a form whose repr shows them:
    the head is a `RequestBytes` from the moment it exists.
    """
    raw = request.headers.raw
    head = request_line(request) + header_lines(raw, request)
    chunked = b"transfer-encoding" in head.lower() and is_chunked(raw)
    del raw  # the headers, token included: not a local of any frame below
    if chunked:
        # A streamed body, read whole by the caller: sent as one chunk.
        return RequestBytes(
            b"".join(
                [head, b"%x\r\n" % len(body), body, b"\r\n0\r\n\r\n"]
                if body
                else [head, b"0\r\n\r\n"]
            )
        )
    return RequestBytes(head + body) if body else RequestBytes(head)


def request_line(request: httpx.Request) -> bytes:
    """*request*'s first line, its method and its path checked."""
    method = request.method
    if not (method.isascii() and method.isalpha()):
        raise httpx.LocalProtocolError(f"invalid HTTP method {method!r}", request=request)
    line = b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), request.url.raw_path)
    if line.count(b"\n") != 1 or line.count(b"\r") != 1 or line.count(b"\0"):
        raise httpx.LocalProtocolError("invalid character in the request's path", request=request)
    return line


def header_lines(raw: Headers, request: httpx.Request | None = None) -> RequestBytes:
    """
    The header section of a request with the headers *raw*, blank line
    included, refusing a CR, LF or NUL inside a name or a value. A client
    serializes its fixed headers once with it (`PREPARED_HEAD_EXTENSION`).
    """
    lines = RequestBytes(b"".join([*[b"%s: %s\r\n" % header for header in raw], b"\r\n"]))
    # One scan of the whole section instead of one per header: a CR, LF or
    # NUL inside a name or a value shows as a line too many.
    count = len(raw) + 1
    if lines.count(b"\n") != count or lines.count(b"\r") != count or lines.count(b"\0"):
        raise httpx.LocalProtocolError("invalid character in a header", request=request)
    return lines


PREPARED_HEAD_EXTENSION: Final = "journey_async.prepared_head"
"""
A request's extension, set by the client on the body-less requests it
builds: ``(request.headers, header_lines(request.headers.raw))``, the lines
serialized once per client. The transport writes them, after the request
line, instead of serializing the headers again, as long as
``request.headers`` is still that very object and nothing runs between the
client and the transport that could have changed it in place.
"""


def is_chunked(headers: Headers) -> bool:
    """Whether *headers* say the body is sent in chunks."""
    return any(
        name.lower() == b"transfer-encoding" and value.lower().rstrip().endswith(b"chunked")
        for name, value in headers
    )


def delimited_by_close(headers: Headers) -> bool:
    """Whether a body with *headers* ends only where the connection does:
    neither a Content-Length nor chunked."""
    return not is_chunked(headers) and all(name.lower() != b"content-length" for name, _ in headers)


def _looks_like_tls(data: bytes) -> bool:
    """Whether *data*, a response's first bytes, is a TLS record: an alert
    (21) or a handshake (22), of version 3.x (SSL 3 to TLS 1.3), which a TLS
    server sends to a plain request where an HTTP server's status line goes."""
    return len(data) >= 2 and data[0] in (21, 22) and data[1] == 3


class ParsedResponse:
    """One response as received: status line, headers, body (decoded)."""

    __slots__ = ("body", "headers", "headers_complete", "http_version", "reason", "status")

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: Headers = []
        self.body: list[bytes | bytearray] = []  # pieces, within MAX_BODY_PARTS
        self.headers_complete = False
        self.http_version = b"HTTP/1.1"


class ResponseParser:
    """
    The responses of one connection, parsed one at a time, within the caps.

    `expect` announces a response (the request is being sent) and the cap on
    its body; `feed` gives it bytes; *on_complete* is called with each
    response once it is whole, its body decoded (`_decoding`). `feed` raises
    `httpx.RemoteProtocolError` for bytes that are not HTTP, `ResponseTooLarge`
    past a cap (`_limits`), `httpx.DecodingError` for a body that is not in
    its coding. Bytes that no request asked for set `spent`: the connection
    cannot be trusted again.
    """

    __slots__ = (
        "_decoder",
        "_encoding",
        "_field_bytes",
        "_head_bytes",
        "_is_head",
        "_limit",
        "_line_bytes",
        "_on_complete",
        "_parser",
        "_room",
        "_trailing",
        "keep_alive",
        "response",
        "spent",
    )

    def __init__(self, on_complete: Callable[[ParsedResponse], None]) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._on_complete = on_complete
        self._is_head = False
        self._limit = self._room = 0
        self._head_bytes = self._line_bytes = self._field_bytes = 0
        self._encoding: bytes | None = None
        self._decoder: Decoder | None = None
        self._trailing = False
        self.response: ParsedResponse | None = None
        self.keep_alive = True
        self.spent = False

    def expect(self, *, is_head: bool, max_body: int) -> None:
        """Start a new response: the one to the request being sent, its body
        (decoded) at most *max_body* bytes."""
        self.response = ParsedResponse()
        self._is_head = is_head
        self._limit = self._room = max_body
        self._head_bytes = self._line_bytes = self._field_bytes = 0
        self._encoding = self._decoder = None
        self._trailing = False

    def feed(self, data: bytes) -> None:
        response = self.response
        in_head = response is not None and not response.headers_complete
        if in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise httpx.RemoteProtocolError("the server switched protocols unasked") from None
        except httptools.HttpParserError as exc:
            # What a callback raised (a cap, a decoder) comes as the context.
            cause = exc.__context__
            if isinstance(cause, Overflow):
                raise body_too_large(self._limit) from None
            if isinstance(cause, httpx.RequestError):
                raise cause from None
            if in_head and self._head_bytes == len(data) and _looks_like_tls(data):
                raise WrongScheme(
                    "the server answered in TLS, not in plain HTTP: an https:// server at "
                    "an http:// URL?"
                ) from None
            raise httpx.RemoteProtocolError(f"malformed HTTP response: {exc}") from None
        if in_head and response is not None and not response.headers_complete:
            # Still in the head: llhttp keeps the line it is in, so bound it
            # and the head here, as it grows, not only once it is whole.
            self._bound_line(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                raise head_too_large("head", MAX_HEAD_BYTES)
        elif self._trailing and self.response is not None:
            # In the trailer section after the last chunk: httptools keeps
            # the field it is in too, however long, so it is bounded alike.
            # Bytes after the feed's last line feed are that field's: no
            # chunk data came after the chunk header (on_body clears the flag).
            self._bound_line(data)

    def _bound_line(self, data: bytes) -> None:
        """Count the line still arriving at the end of *data* against the line cap."""
        newline = data.rfind(b"\n")
        self._line_bytes = len(data) - newline - 1 if newline >= 0 else self._line_bytes + len(data)
        if self._line_bytes > MAX_HEAD_LINE_BYTES:
            raise head_too_large("head line", MAX_HEAD_LINE_BYTES)

    def finish_at_close(self) -> ParsedResponse | None:
        """The connection closed: the response in progress, if its body was
        to end with the connection, else None."""
        response = self.response
        if response is None or not response.headers_complete:
            return None
        if not delimited_by_close(response.headers):
            return None
        self.keep_alive = False
        self._flush(response)
        self._complete(response)
        return response

    # --- httptools callbacks ---

    # After a response is complete `response` is None, so bytes that follow
    # it (a second response nobody asked for) only mark the connection spent.

    def on_status(self, status: bytes) -> None:
        if (response := self.response) is None:
            self.spent = True
            return
        response.reason += status
        if len(response.reason) > MAX_HEAD_LINE_BYTES:
            raise head_too_large("head line", MAX_HEAD_LINE_BYTES)

    def on_header(self, name: bytes, value: bytes) -> None:
        if (response := self.response) is None:
            self.spent = True
            return
        size = len(name) + len(value)
        if size > MAX_HEAD_LINE_BYTES:
            raise head_too_large("head line", MAX_HEAD_LINE_BYTES)
        self._field_bytes += size
        if response.headers_complete:
            # A trailer field, after the last chunk: counted under the head's
            # cap, as endless trailers would otherwise grow without bound,
            # and dropped, as httpx drops them: a trailer cannot change how
            # the body already read is framed or encoded.
            if self._field_bytes > MAX_HEAD_BYTES:
                raise head_too_large("head", MAX_HEAD_BYTES)
            return
        response.headers.append((name, value))
        if len(name) == 16 and name.lower() == b"content-encoding":
            self._encoding = value if self._encoding is None else self._encoding + b"," + value

    def on_headers_complete(self) -> None:
        if (response := self.response) is None:
            self.spent = True
            return
        response.headers_complete = True
        if self._field_bytes > MAX_HEAD_BYTES:
            raise head_too_large("head", MAX_HEAD_BYTES)
        status = self._parser.get_status_code()
        if status == 101:
            # llhttp pauses on any 101, with an Upgrade header or without.
            raise httpx.RemoteProtocolError("the server switched protocols unasked")
        if status < 100:
            raise httpx.RemoteProtocolError(
                f"malformed HTTP response: status code {status:03d} is not an HTTP status"
            )
        if self._is_head and status >= 200:
            # llhttp would wait for the body a HEAD response announces but
            # never sends; finish here, and do not reuse a connection whose
            # parser is left mid-message.
            self.keep_alive = False
            self._complete(response)
            return
        if self._encoding is not None:
            try:
                self._decoder = decoder_for(self._encoding)
            except httpx.DecodingError as exc:
                # An error response: complete without its body, and read none of it.
                drop_undecodable(status, exc)
                self.keep_alive = False
                self._complete(response)

    def on_chunk_header(self) -> None:
        # Until chunk data comes, what follows may be the trailer section.
        self._trailing = True
        self._line_bytes = 0

    def on_body(self, body: bytes) -> None:
        if (response := self.response) is None:
            self.spent = True
            return
        self._trailing = False
        decoder = self._decoder
        try:
            if decoder is not None:
                try:
                    body = decoder.decode(body, self._room)
                except httpx.DecodingError as exc:
                    # An error response: complete without its body, and read no more of it.
                    self._drop_body(response, exc)
                    self.keep_alive = False
                    self._complete(response)
                    return
            elif len(body) > self._room:
                raise Overflow
        except Overflow:
            # An error response, alike: its status stands (`drop_over_cap`).
            drop_over_cap(self._parser.get_status_code(), self._limit)
            self._decoder = None
            response.body = []
            self.keep_alive = False
            self._complete(response)
            return
        self._room -= len(body)
        parts = response.body
        if len(parts) < MAX_BODY_PARTS:
            parts.append(body)
        else:  # a body in many small pieces: merged, not kept as objects apiece
            add_part(parts, body)

    def on_message_complete(self) -> None:
        if (response := self.response) is None:
            self.spent = True
            return
        if 100 <= self._parser.get_status_code() < 200:
            # An interim response (100 Continue, 103 Early Hints): the real one follows.
            response.reason = b""
            response.headers = []
            response.body = []
            response.headers_complete = False
            self._head_bytes = self._line_bytes = self._field_bytes = 0
            # Its Content-Encoding, if it had one, is not the real response's.
            self._encoding = self._decoder = None
            return
        self._trailing = False
        self._flush(response)
        self.keep_alive = self._parser.should_keep_alive()
        self._complete(response)

    def _flush(self, response: ParsedResponse) -> None:
        if self._decoder is not None:
            try:
                self._decoder.flush()
            except httpx.DecodingError as exc:
                self._drop_body(response, exc)

    def _drop_body(self, response: ParsedResponse, error: httpx.DecodingError) -> None:
        """*response*'s body is not in its coding: *error*, unless it is an
        error response, whose body is then dropped (`drop_undecodable`)."""
        drop_undecodable(self._parser.get_status_code(), error)
        self._decoder = None
        response.body = []

    def _complete(self, response: ParsedResponse) -> None:
        self.response = None
        parser = self._parser
        response.status = parser.get_status_code()
        if parser.get_http_version() == "1.0":
            response.http_version = b"HTTP/1.0"
        self._on_complete(response)
