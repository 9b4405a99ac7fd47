"""
The size caps (`journey_async._http._limits`) against raw asyncio servers
that never stop: an endless chunked body, an endless header line, a head of
endless short headers. Each ends in `ResponseTooLarge` (or, through the
client, `ResponseTooLargeError`) naming its cap, with the connection closed
and the memory held never far past the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from scripted import OK, constant, scripted, send, serving

import journey_async as ja
from journey_async._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_REMOVAL_ACK_BYTES,
    MAX_RESPONSE_BYTES_EXTENSION,
    HTTP11Transport,
    ResponseTooLarge,
)
from journey_async._http._body import read_bounded, send_and_read
from journey_async._http._limits import MAX_BODY_PARTS, MAX_HEAD_BYTES, MAX_HEAD_LINE_BYTES
from journey_async._http._wire import ParsedResponse, ResponseParser

TOKEN = "test-token"
CHUNK = b"x" * 65536


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


class Endless:
    """A server that sends *start*, then *more* for ever, until the client
    goes away; counts what it managed to send."""

    def __init__(self, start: bytes, more: bytes) -> None:
        self.start = start
        self.more = more
        self.sent = 0
        self.closed_by_client = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self.start)
        try:
            while True:
                writer.write(self.more)
                self.sent += len(self.more)
                await writer.drain()
        except ConnectionError:
            self.closed_by_client.set()
        finally:
            writer.close()

    def running(self) -> AbstractAsyncContextManager[str]:
        return serving(self._serve)


async def held_while(call: Callable[[], object]) -> int:
    """Peak bytes allocated while awaiting *call*()."""
    tracemalloc.start()
    try:
        with contextlib.suppress(ResponseTooLarge):
            await call()  # type: ignore[misc]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def failure(transport: HTTP11Transport, url: str, **kwargs: object) -> ResponseTooLarge:
    with pytest.raises(ResponseTooLarge) as info:
        await send(transport, url, **kwargs)  # type: ignore[arg-type]
    return info.value


async def test_an_endless_chunked_body_stops_at_the_cap() -> None:
    server = Endless(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK),
    )
    cap = 1024 * 1024
    async with server.running() as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            tracemalloc.start()
            try:
                error = await failure(transport, url, max_body=cap)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            async with asyncio.timeout(5):
                await server.closed_by_client.wait()
        finally:
            await transport.aclose()
    assert (error.cap, error.limit) == ("max_response_bytes", cap)
    assert peak < 3 * cap
    assert server.sent < 64 * cap, "the client stopped reading"


async def test_an_endless_header_line_stops_at_the_line_cap() -> None:
    server = Endless(b"HTTP/1.1 200 OK\r\nX-Endless: ", CHUNK)
    async with server.running() as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            tracemalloc.start()
            try:
                error = await failure(transport, url)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            async with asyncio.timeout(5):
                await server.closed_by_client.wait()
        finally:
            await transport.aclose()
    assert (error.cap, error.limit) == ("head line", MAX_HEAD_LINE_BYTES)
    assert peak < 16 * len(CHUNK)  # a few reads of the socket, never the line


async def test_a_head_of_endless_short_headers_stops_at_the_head_cap() -> None:
    server = Endless(b"HTTP/1.1 200 OK\r\n", b"X-Many: 1234567890\r\n" * 1000)
    async with server.running() as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            error = await failure(transport, url)
            async with asyncio.timeout(5):
                await server.closed_by_client.wait()
        finally:
            await transport.aclose()
    assert (error.cap, error.limit) == ("head", MAX_HEAD_BYTES)


@pytest.mark.parametrize(
    "more",
    [b"X-Trailer: 1234567890\r\n" * 1000, b"t" * 4096],
    ids=["endless-trailers", "endless-trailer-line"],
)
async def test_endless_trailers_stop_at_a_cap(more: bytes) -> None:
    # httptools hands trailers to on_header like header fields, and keeps
    # the one it is in: once kept in the headers, without a cap, a trailer
    # section at loopback speed took hundreds of MiB in two seconds.
    start = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
    server = Endless(start + b"X-T: ", more)
    async with server.running() as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            tracemalloc.start()
            try:
                # Bounded in time too, so that a regression fails rather than
                # taking the machine's memory.
                async with asyncio.timeout(2):
                    error = await failure(transport, url)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            async with asyncio.timeout(5):
                await server.closed_by_client.wait()
        finally:
            await transport.aclose()
    assert error.cap in ("head", "head line")
    assert peak < 16 * len(CHUNK)


@pytest.mark.parametrize(
    ("answer", "cap"),
    [
        (b"HTTP/1.1 200 " + b"O" * (MAX_HEAD_LINE_BYTES + 1) + b"\r\n\r\n", "head line"),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * MAX_HEAD_LINE_BYTES + b"\r\n\r\n", "head line"),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X-Many: 0123456789abcdef\r\n" * 3000 + b"\r\n",
            "head",
        ),
    ],
    ids=["status-line", "header-line", "head"],
)
async def test_a_whole_head_over_a_cap_in_one_read(answer: bytes, cap: str) -> None:
    async with scripted(constant(answer)) as (url, _, transport):
        error = await failure(transport, url)
    assert error.cap == cap
    # The message names the cap too, for whoever reads only the message.
    said = {
        "head line": f"a line of the response head is over {MAX_HEAD_LINE_BYTES} bytes",
        "head": f"the response head is over {MAX_HEAD_BYTES} bytes",
    }
    assert str(error).startswith(said[cap])


async def test_at_the_caps_is_fine() -> None:
    body = b"y" * 1000
    line = b"X-Long: " + b"v" * (MAX_HEAD_LINE_BYTES - len("X-Long")) + b"\r\n"
    answer = b"HTTP/1.1 200 OK\r\n" + line + b"Content-Length: 1000\r\n\r\n" + body
    async with scripted(constant(answer)) as (url, server, transport):
        for _ in range(2):
            assert (await send(transport, url, max_body=1000)).content == body
        assert (await failure(transport, url, max_body=999)).limit == 999
        assert (await send(transport, url, max_body=1000)).content == body
    assert server.connections == 2, "reused before the failure, closed by it"


async def test_the_client_says_which_cap_and_how_to_raise_it() -> None:
    big = b"[" + b"1," * 5000 + b"1]"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
    async with (
        scripted(constant(answer)) as (url, _, _transport),
        ja.AsyncJourneyClient(TOKEN, base_url=url, max_response_bytes=1000) as client,
    ):
        with pytest.raises(ja.ResponseTooLargeError) as info:
            await client.get_stats("journey")
    error = info.value
    assert (error.cap, error.limit) == ("max_response_bytes", 1000)
    assert str(error).startswith("GET /api/journey/journey/statistics/external: ")
    assert "max_response_bytes=" in str(error)
    assert isinstance(error, ja.ResponseFormatError)


async def test_a_removal_ack_has_a_small_cap_of_its_own() -> None:
    ack = b'{"success": true, "pad": "' + b"p" * MAX_REMOVAL_ACK_BYTES + b'"}'
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ack), ack)
    async with (
        scripted(constant(answer)) as (url, server, _transport),
        ja.AsyncJourneyClient(TOKEN, base_url=url) as client,
    ):
        with pytest.raises(ja.ResponseTooLargeError) as info:
            await client.remove_users(["u1"], all_journeys=True)
    assert info.value.limit == MAX_REMOVAL_ACK_BYTES
    assert len(server.heads) == 1, "never retried"


async def test_caps_hold_on_a_caller_transport_and_a_caller_client() -> None:
    big = b"z" * 5000

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=big)

    mock = httpx.MockTransport(answer)
    async with ja.AsyncJourneyClient(
        TOKEN, base_url="http://127.0.0.1:1", transport=mock, max_response_bytes=4999
    ) as client:
        with pytest.raises(ja.ResponseTooLargeError):
            await client.get_stats("j")
    async with (
        httpx.AsyncClient(transport=mock) as http,
        ja.AsyncJourneyClient(
            TOKEN, base_url="http://127.0.0.1:1", http_client=http, max_response_bytes=4999
        ) as client,
    ):
        with pytest.raises(ja.ResponseTooLargeError):
            await client.get_stats("j")


PAGE = b"<html>" + b"m" * 100_000 + b"</html>"  # a maintenance page, its logo inlined


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 503 Down\r\nContent-Length: %d\r\n\r\n%s" % (len(PAGE), PAGE),
        b"HTTP/1.1 503 Down\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(gzip.compress(PAGE)), gzip.compress(PAGE)),
    ],
    ids=["plain", "gzip"],
)
async def test_an_error_response_over_the_cap_keeps_its_status_without_its_body(
    answer: bytes,
) -> None:
    # Refused as ResponseTooLarge, a 503 was not retried and a 413 did not
    # split its removal: the status is what the caller acts on.
    async with scripted(constant(answer)) as (url, server, transport):
        for _ in range(2):
            response = await send(transport, url, max_body=1000)
            assert (response.status_code, response.content) == (503, b"")
    assert server.connections == 2, "not reused: the rest of the body was not read"


@pytest.mark.parametrize("whole", [True, False], ids=["content", "stream"])
async def test_an_error_response_over_the_cap_from_another_transport_keeps_its_status(
    whole: bool,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if whole:
            return httpx.Response(503, content=PAGE)
        return httpx.Response(503, stream=httpx.ByteStream(PAGE))

    request = httpx.Request(
        "GET", "http://127.0.0.1:1/", extensions={MAX_RESPONSE_BYTES_EXTENSION: 1000}
    )
    response = await send_and_read(httpx.MockTransport(answer), request)
    assert (response.status_code, response.content) == (503, b"")
    ok = httpx.MockTransport(lambda request: httpx.Response(200, content=PAGE))
    with pytest.raises(ResponseTooLarge):
        await send_and_read(ok, request)


async def test_a_removal_answered_by_a_big_error_page_is_retried_and_split() -> None:
    answers = [
        b"HTTP/1.1 503 Down\r\nRetry-After: 0\r\nContent-Length: %d\r\n\r\n%s" % (len(PAGE), PAGE),
        b"HTTP/1.1 413 Too Large\r\nContent-Length: %d\r\n\r\n%s" % (len(PAGE), PAGE),
    ]
    ack = b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n" + b'{"success": true}'

    async def reply(head: bytes, number: int) -> bytes:
        return answers.pop(0) if answers else ack

    policy = ja.RetryPolicy(sleep=no_wait)
    async with (
        scripted(reply) as (url, server, _transport),
        ja.AsyncJourneyClient(TOKEN, base_url=url, retry=policy) as client,
    ):
        result = await client.remove_users(["u1", "u2"], all_journeys=True)
    assert (result.user_ids, result.requests) == (("u1", "u2"), 2)
    assert len(server.heads) == 4, "the 503 retried, the 413 split in two"


TINY_BODY = bytes(range(256)) * 1024  # 256 KiB


def test_a_body_in_tiny_chunks_costs_about_its_size() -> None:
    # Two bytes a chunk: kept as a piece each, the body cost some 20 times
    # its size (5.5 MB for these 256 KiB), so the cap bounded memory only
    # 20 times over.
    done: list[ParsedResponse] = []
    parser = ResponseParser(done.append)
    parser.expect(is_head=False, max_body=len(TINY_BODY))
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunks = [b"2\r\n%s\r\n" % TINY_BODY[i : i + 2] for i in range(0, len(TINY_BODY), 2)]
    tracemalloc.start()
    try:
        for start in range(0, len(chunks), 4096):  # reads of 4096 chunks, 28 KiB
            parser.feed(b"".join(chunks[start : start + 4096]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    parser.feed(b"0\r\n\r\n")
    [response] = done
    assert b"".join(response.body) == TINY_BODY
    assert len(response.body) <= MAX_BODY_PARTS + 1
    assert peak < 3 * len(TINY_BODY)


class Tiny(httpx.AsyncByteStream):
    """A body of two bytes a piece, as httpcore hands a chunked one over."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(TINY_BODY), 2):
            yield TINY_BODY[start : start + 2]


async def test_a_body_in_tiny_pieces_from_another_transport_costs_about_its_size() -> None:
    response = httpx.Response(200, stream=Tiny())
    tracemalloc.start()
    try:
        await read_bounded(response, len(TINY_BODY))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.content == TINY_BODY
    assert peak < 3 * len(TINY_BODY)


async def test_ok_is_untouched() -> None:
    async with scripted(constant(OK)) as (url, _, transport):
        assert (await send(transport, url)).json() == {}


def test_the_caps_are_the_ones_the_readme_documents() -> None:
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    documented = {
        "max_response_bytes` (4 MiB by default": DEFAULT_MAX_RESPONSE_BYTES == 4 * 1024 * 1024,
        "acknowledgement is capped at 64 KiB": MAX_REMOVAL_ACK_BYTES == 64 * 1024,
        "8190 bytes a line": MAX_HEAD_LINE_BYTES == 8190,
        "64 KiB in all": MAX_HEAD_BYTES == 64 * 1024,
    }
    for phrase, holds in documented.items():
        assert phrase in readme
        assert holds, phrase


@pytest.mark.parametrize("interim", [b"", b"HTTP/1.1 100 Continue\r\n\r\n"], ids=["", "interim"])
def test_a_head_at_the_head_cap_is_fine_and_a_byte_more_is_not(interim: bytes) -> None:
    # Fed by hand, in pieces as a socket may deliver them: the head still
    # incomplete is bounded as it grows, by every byte of it (after an
    # interim response too, whose bytes do not count).
    status = b"HTTP/1.1 200 OK\r\n"
    line = b"X-Many: " + b"v" * 1000 + b"\r\n"
    lines = [line] * ((MAX_HEAD_BYTES - len(status)) // len(line))
    rest = MAX_HEAD_BYTES - len(status) - len(line) * len(lines)
    head = status + b"".join(lines) + b"X-Last: " + b"w" * (rest - len(b"X-Last: "))
    assert len(head) == MAX_HEAD_BYTES
    parser = ResponseParser(lambda response: None)
    parser.expect(is_head=False, max_body=100)
    if interim:
        parser.feed(interim)
    for start in range(0, len(head), 4096):
        parser.feed(head[start : start + 4096])
    with pytest.raises(ResponseTooLarge) as info:
        parser.feed(b"w")
    assert info.value.cap == "head"


def test_header_fields_at_the_head_cap_are_fine_and_a_byte_more_is_not() -> None:
    # One read holding the whole head: its names and values are what is counted.
    def fields(size: int) -> bytes:
        value = b"v" * 4000
        lines = []
        while size > 0:
            take = min(size, 4000 + len(b"X-F"))
            lines.append(b"X-F: " + value[: take - len(b"X-F")] + b"\r\n")
            size -= take
        return b"".join(lines)

    done: list[ParsedResponse] = []
    for size, fine in [(MAX_HEAD_BYTES, True), (MAX_HEAD_BYTES + 1, False)]:
        parser = ResponseParser(done.append)
        parser.expect(is_head=False, max_body=100)
        length = b"Content-Length: 0\r\n\r\n"  # 15 bytes of field: its name and "0"
        answer = b"HTTP/1.1 200 OK\r\n" + fields(size - 15) + length
        if fine:
            parser.feed(answer)
        else:
            with pytest.raises(ResponseTooLarge):
                parser.feed(answer)
    assert len(done) == 1


def test_a_line_still_arriving_at_the_line_cap_is_fine_and_a_byte_more_is_not() -> None:
    parser = ResponseParser(lambda response: None)
    parser.expect(is_head=False, max_body=100)
    start = b"X-Long: "
    parser.feed(b"HTTP/1.1 200 OK\r\n" + start + b"v" * (MAX_HEAD_LINE_BYTES - len(start) - 10))
    parser.feed(b"v" * 10)  # the line, still without its end, exactly at the cap
    with pytest.raises(ResponseTooLarge) as info:
        parser.feed(b"v")
    assert info.value.cap == "head line"


def test_a_line_at_the_cap_whose_line_feed_starts_the_next_read_is_fine() -> None:
    parser = ResponseParser(lambda response: None)
    parser.expect(is_head=False, max_body=100)
    start = b"X-Long: "
    line = start + b"v" * (MAX_HEAD_LINE_BYTES - len(start) - 1)
    parser.feed(b"HTTP/1.1 200 OK\r\n" + line + b"\r")
    parser.feed(b"\nX-Next: 1")  # a new line begins: the long one no longer counts
    parser.feed(b"\r\n")
