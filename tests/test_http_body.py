"""
A response's body read whole within its cap on the paths the own transport
does not read itself (`journey_async._http._body`): a mock's response built
in memory, a stream from httpx's transport (httpcore) against a raw server
on 127.0.0.1, and the codings it names undone here.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from scripted import OK, constant, scripted, serving

from journey_async._http import (
    MAX_RESPONSE_BYTES_EXTENSION,
    ResponseTooLarge,
    send_and_read,
    sender_for_client,
)
from journey_async._http._body import read_bounded

BODY = b'{"payload": {"title": "t", "points": []}}'


class Chunks(httpx.AsyncByteStream):
    """A streamed body in the pieces given; remembers whether it was closed."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


async def test_a_body_in_memory_at_its_cap_is_kept_and_one_byte_over_is_not() -> None:
    await read_bounded(httpx.Response(200, content=BODY), len(BODY))
    with pytest.raises(ResponseTooLarge) as info:
        await read_bounded(httpx.Response(200, content=BODY), len(BODY) - 1)
    assert info.value.limit == len(BODY) - 1


async def test_a_streamed_body_at_its_cap_is_kept_and_one_byte_over_is_not() -> None:
    stream = Chunks(BODY[:10], BODY[10:])
    response = httpx.Response(200, stream=stream)
    await read_bounded(response, len(BODY))
    assert response.content == BODY
    assert stream.closed

    stream = Chunks(BODY[:10], BODY[10:])
    with pytest.raises(ResponseTooLarge):
        await read_bounded(httpx.Response(200, stream=stream), len(BODY) - 1)
    assert stream.closed, "the response is closed as it is refused"


async def test_codings_in_two_header_lines_are_undone_in_reverse_over_httpcore() -> None:
    # deflate applied first, then gzip: two Content-Encoding lines, one coding each.
    encoded = gzip.compress(zlib.compress(BODY))
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(encoded), encoded)
    )

    async def reply(head: bytes, number: int) -> bytes:
        return answer

    async with scripted(reply) as (url, _, _), httpx.AsyncHTTPTransport() as transport:
        response = await send_and_read(transport, httpx.Request("GET", url))
    assert response.content == BODY
    assert response.is_closed


async def test_a_response_over_httpcore_is_whole_as_httpx_would_return_it() -> None:
    async with scripted(constant(OK)) as (url, _, _), httpx.AsyncHTTPTransport() as transport:
        request = httpx.Request("GET", url)
        before = time.perf_counter()
        response = await send_and_read(transport, request)
        took = time.perf_counter() - before
    assert response.request is request
    assert response.is_closed
    assert response.content == b"{}"
    # Not a timing: elapsed is measured inside the call, so within it.
    assert 0 <= response.elapsed.total_seconds() <= took


async def test_a_mock_response_in_memory_at_its_cap_is_kept_and_one_byte_over_is_not() -> None:
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=BODY))

    def request(cap: int) -> httpx.Request:
        return httpx.Request(
            "GET", "http://127.0.0.1:1/", extensions={MAX_RESPONSE_BYTES_EXTENSION: cap}
        )

    assert (await send_and_read(mock, request(len(BODY)))).content == BODY
    with pytest.raises(ResponseTooLarge):
        await send_and_read(mock, request(len(BODY) - 1))


async def test_a_caller_client_reads_a_long_body_only_up_to_its_cap() -> None:
    # httpx alone would read all 64 MiB before the cap is checked: the body is
    # streamed and bounded here, and the server cut off long before its end.
    cut_off = asyncio.Event()

    async def long(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(1024):
                writer.write(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            cut_off.set()
        finally:
            writer.close()

    async with serving(long) as url, httpx.AsyncClient() as http:
        send = sender_for_client(http)
        request = http.build_request(
            "GET", url, extensions={MAX_RESPONSE_BYTES_EXTENSION: 1024 * 1024}
        )
        with pytest.raises(ResponseTooLarge):
            await send(request)
        async with asyncio.timeout(10):
            await cut_off.wait()


class Raising(httpx.AsyncBaseTransport):
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self.exc


async def test_httpcores_head_overflow_is_the_head_cap() -> None:
    # On the handovers and a caller's transport, httpcore (h11) reads the
    # head; past its buffer it says so as a protocol error, not a failed
    # connection (which would be retried).
    request = httpx.Request("GET", "http://127.0.0.1/x")
    overflow = httpx.RemoteProtocolError("Receive buffer too long")
    with pytest.raises(ResponseTooLarge) as info:
        await send_and_read(Raising(overflow), request)
    assert (info.value.cap, info.value.limit) == ("head", 65536)
    async with httpx.AsyncClient(transport=Raising(overflow)) as client:
        with pytest.raises(ResponseTooLarge):
            await sender_for_client(client)(request)
    other = httpx.RemoteProtocolError("illegal status line")
    with pytest.raises(httpx.RemoteProtocolError):
        await send_and_read(Raising(other), request)


@pytest.mark.parametrize(
    ("headers", "cap"),
    [
        ([(b"X-Long", b"a" * 8190)], "head line"),
        ([(b"X-H%d" % i, b"a" * 90) for i in range(700)], "head"),
    ],
)
async def test_a_head_over_a_cap_from_another_transport_is_refused_and_closed(
    headers: list[tuple[bytes, bytes]], cap: str
) -> None:
    body = Chunks(b"{}")
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=headers, stream=body)
    )
    with pytest.raises(ResponseTooLarge) as info:
        await send_and_read(transport, httpx.Request("GET", "http://127.0.0.1/x"))
    assert info.value.cap == cap
    assert body.closed


async def test_a_head_at_the_caps_from_another_transport_is_kept() -> None:
    # One line at 8190 bytes with ": " and CRLF; 64 KiB in all.
    headers = [(b"X-Long", b"a" * (8190 - 10))] + [
        (b"X-H%03d" % i, b"a" * (8190 - 11)) for i in range(6)
    ]
    assert sum(len(n) + len(v) + 4 for n, v in headers) <= 65536
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=headers, content=b"{}")
    )
    response = await send_and_read(transport, httpx.Request("GET", "http://127.0.0.1/x"))
    assert response.content == b"{}"
