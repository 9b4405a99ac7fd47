"""
`EmulatorTransport`: a `JourneyEmulator` under httpx in this process, with
what tests of a client need from a wire (dropped connections, read timeouts);
and `emulator_client`, a client wired to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import httpx

from journey_async._emulator._app import JourneyEmulator
from journey_async._emulator._asgi import Message, Scope, _ConnectionDropped, _Headers

if TYPE_CHECKING:
    from journey_async._client import AsyncJourneyClient


class EmulatorTransport(httpx.AsyncBaseTransport):
    """
    An httpx transport that hands requests straight to a `JourneyEmulator`.

    Like `httpx.ASGITransport`, with what tests of a client need from a wire:
    `Fault.drop` raises `httpx.RemoteProtocolError`, and the request's read
    timeout is enforced, so `Fault.delay` and *latency* make a client time out
    with `httpx.ReadTimeout` as a socket would.

    .. versionadded:: 0.1.0
    """

    def __init__(self, emulator: JourneyEmulator) -> None:
        self.emulator = emulator

    def __repr__(self) -> str:
        return f"<EmulatorTransport {self.emulator!r}>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # A wire always yields to the loop: cancellation lands only where a
        # task does, so without it a fan-out ran on through every journey
        # after its first failure, starving every other task meanwhile.
        await anyio.lowlevel.checkpoint()
        body = await request.aread()
        url = request.url
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port),
            "client": ("127.0.0.1", 123),
        }
        received = False
        status: int | None = None
        headers: _Headers = []
        parts: list[bytes] = []

        async def receive() -> Message:
            nonlocal received
            if received:
                return {"type": "http.disconnect"}
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        timeouts = request.extensions.get("timeout") or {}
        read_timeout: float | None = timeouts.get("read")
        try:
            # A cancel scope is a large share of this hot path's work; skip it
            # when the emulator cannot sleep, so no timeout could fire anyway.
            if read_timeout is None or not self.emulator._may_sleep():
                await self.emulator(scope, receive, send)
            else:
                with anyio.fail_after(read_timeout):
                    await self.emulator(scope, receive, send)
        except _ConnectionDropped:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=request
            ) from None
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the emulator", request=request) from None
        if status is None:
            raise RuntimeError("the emulator returned without starting a response")
        return httpx.Response(status, headers=headers, content=b"".join(parts))


def emulator_client(emulator: JourneyEmulator, **client_kwargs: Any) -> AsyncJourneyClient:
    """
    An `AsyncJourneyClient` wired to *emulator* in-process, with its token.

    Keyword arguments go to the client (``retry=``, ``timeout=``,
    ``max_concurrency=``...). Use it as the client itself: ``async with``.

    .. versionadded:: 0.1.0
    """
    # Imported here: journey_async.testing must import without the client.
    from journey_async._client import AsyncJourneyClient

    return AsyncJourneyClient(
        emulator.token,
        base_url="http://127.0.0.1",
        transport=EmulatorTransport(emulator),
        **client_kwargs,
    )
