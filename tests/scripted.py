"""
Servers on 127.0.0.1 that answer with whatever bytes a test says, for the
transport's tests: what a well-behaved server never sends (chunks, interim
responses, bodies ended by a close, garbage, a stale keep-alive).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from journey_async._http import MAX_RESPONSE_BYTES_EXTENSION, HTTP11Transport


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Reply = Callable[[bytes, int], Awaitable[bytes | None]]
"""Given a request's head and its number on the connection (from 0): the bytes
to answer with, or None to close the connection without answering."""


class ScriptedServer:
    """An HTTP server on 127.0.0.1 that answers with whatever bytes a test says."""

    def __init__(self, reply: Reply, *, close_after_answer: bool = False) -> None:
        self.reply = reply
        self.close_after_answer = close_after_answer
        self.connections = 0
        self.open = 0
        self.peak_open = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        try:
            for number in itertools.count():
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.heads.append(head)
                self.bodies.append(await reader.readexactly(length))
                answer = await self.reply(head, number)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    return
        finally:
            self.open -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def running(self, tls: ssl.SSLContext | None = None) -> AbstractAsyncContextManager[str]:
        return serving(self._serve, tls)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve *handler*'s connections on a free port of 127.0.0.1; yields the base URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        server.close()


def constant(answer: bytes, delay: float = 0.0) -> Reply:
    async def reply(head: bytes, number: int) -> bytes:
        await asyncio.sleep(delay)
        return answer

    return reply


TIMEOUTS = httpx.Timeout(2.0)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


@contextlib.asynccontextmanager
async def scripted(
    reply: Reply, *, close_after_answer: bool = False, **kwargs: Any
) -> AsyncIterator[tuple[str, ScriptedServer, HTTP11Transport]]:
    server = ScriptedServer(reply, close_after_answer=close_after_answer)
    kwargs.setdefault("max_connections", 10)
    transport = HTTP11Transport(**kwargs)
    async with server.running() as url:
        try:
            yield url, server, transport
        finally:
            await transport.aclose()


async def send(
    transport: httpx.AsyncBaseTransport,
    url: str,
    method: str = "GET",
    timeouts: httpx.Timeout = TIMEOUTS,
    max_body: int | None = None,
    **kwargs: Any,
) -> httpx.Response:
    extensions: dict[str, Any] = {"timeout": timeouts.as_dict()}
    if max_body is not None:
        extensions[MAX_RESPONSE_BYTES_EXTENSION] = max_body
    request = httpx.Request(method, url, extensions=extensions, **kwargs)
    response = await transport.handle_async_request(request)
    await response.aread()
    return response
