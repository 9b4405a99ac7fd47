"""
The ASGI 3 plumbing the emulator is built on: the callable types, a response
as ``(status, headers, body)`` encoded once, reading a request body, and the
lifespan protocol.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
_Headers: TypeAlias = list[tuple[bytes, bytes]]
# (status, headers, body); None in its place means "drop the connection".
_Response: TypeAlias = tuple[int, _Headers, bytes]


def _json_response(status: int, body: Any, extra: _Headers | None = None) -> _Response:
    encoded = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(encoded)).encode()),
    ]
    if extra:
        headers.extend(extra)
    return status, headers, encoded


def _error(status: int, message: str, extra: _Headers | None = None) -> _Response:
    return _json_response(status, {"success": False, "message": message}, extra)


class _Disconnected(Exception):
    """The client went away before its request body arrived."""


class _ConnectionDropped(Exception):
    """
    Raised by the app after a response started, to make the server close the socket.

    `EmulatorTransport` turns it into `httpx.RemoteProtocolError`; uvicorn
    closes the connection on it (and `._serving` keeps it out of the log).
    """


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if message["type"] == "http.disconnect":
            raise _Disconnected
        return body
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up; answering lets servers run with lifespan="auto".
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
