"""
A response's body read whole within its cap on the paths the own transport
does not read itself (`journey_async._http._body`): a mock's response built
in memory, a stream from httpx's transport (httpcore) against a raw server
on 127.0.0.1, and the codings it names undone here.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from scripted import scripted

from journey_async._http import ResponseTooLarge, send_and_read
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
