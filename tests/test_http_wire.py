"""
The wire format (`journey_async._http._wire`): requests as they go out,
responses as llhttp parses them, through the transport against scripted
servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from scripted import OK, constant, scripted, send, serving

from journey_async._http import HTTP11Transport, ResponseTooLarge, WrongScheme
from journey_async._http._limits import MAX_HEAD_BYTES, MAX_HEAD_LINE_BYTES
from journey_async._http._wire import ParsedResponse, ResponseParser, serialize_request


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'3\r\n{"a\r\n5\r\n": 1}\r\n0\r\n\r\n',
            b'{"a": 1}',
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
            % (len(gzip.compress(b'{"z": 1}')), gzip.compress(b'{"z": 1}')),
            b'{"z": 1}',
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            b"{}",
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
    ids=["chunked", "gzip", "interim-100", "no-content"],
)
async def test_response_framings(answer: bytes, body: bytes) -> None:
    async with scripted(constant(answer)) as (url, server, transport):
        for _ in range(2):
            assert (await send(transport, url)).content == body
    assert server.connections == 1, "still reusable"


async def test_a_head_response_has_no_body() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    async with scripted(constant(answer)) as (url, _, transport):
        response = await send(transport, url, method="HEAD")
        assert (response.status_code, response.content) == (200, b"")
        assert (await send(transport, url, method="HEAD")).status_code == 200


async def test_reason_phrase_and_headers_are_kept_as_sent() -> None:
    answer = (
        b"HTTP/1.1 503 Try Later\r\nRetry-After: 7\r\n"
        b"X-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 0\r\n\r\n"
    )
    async with scripted(constant(answer)) as (url, _, transport):
        response = await send(transport, url)
    assert response.reason_phrase == "Try Later"
    assert response.headers["retry-after"] == "7"
    assert response.headers.get_list("x-dup") == ["1", "2"]


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", "complete response"),
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "malformed HTTP response"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            "switched",
        ),
    ],
    ids=["truncated", "garbage", "bad-length", "upgrade"],
)
async def test_broken_responses_are_remote_protocol_errors(answer: bytes, match: str) -> None:
    async with scripted(constant(answer), close_after_answer=True) as (url, _, transport):
        with pytest.raises(httpx.RemoteProtocolError, match=match) as info:
            await send(transport, url)
        assert info.value.request.url == url


@pytest.mark.parametrize(
    "record",
    [b"\x15\x03\x01\x00\x02\x02\x46", b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00"],
    ids=["alert", "handshake"],
)
async def test_an_answer_in_tls_says_so(record: bytes) -> None:
    # A TLS server at an http:// URL: llhttp's "Expected HTTP/, RTSP/ or
    # ICE/" named no cause.
    async with scripted(constant(record), close_after_answer=True) as (url, _, transport):
        with pytest.raises(WrongScheme, match=r"answered in TLS.*https:// server"):
            await send(transport, url)


async def test_header_injection_is_refused_before_sending() -> None:
    async with scripted(constant(OK)) as (url, server, transport):
        with pytest.raises(httpx.LocalProtocolError, match="invalid character"):
            await send(transport, url, headers={"X-Evil": "a\r\nX-Injected: 1"})
        with pytest.raises(httpx.LocalProtocolError, match="method"):
            await send(transport, url, method="GET /x HTTP/1.1\r\n")
    assert server.heads == []


async def test_a_streamed_request_body_is_sent_chunked() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b'{"user_ids": '
        yield b'["u1"]}'

    async def reply(head: bytes, number: int) -> bytes:
        return OK

    async with scripted(reply) as (url, server, transport):
        await send(transport, url, method="POST", content=parts())
    assert b"Transfer-Encoding: chunked" in server.heads[0]


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nX-Injected: 1", "a\0b"])
def test_a_lone_cr_lf_or_nul_in_a_header_is_refused(value: str) -> None:
    request = httpx.Request("GET", "http://127.0.0.1/", headers={"X-A": value})
    with pytest.raises(httpx.LocalProtocolError, match="invalid character"):
        serialize_request(request, b"")


def test_a_clean_request_is_serialized_as_is() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/p?q=1", headers={"X-A": "b"})
    assert bytes(serialize_request(request, b"{}")) == (
        b"POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nX-A: b\r\n\r\n{}"
    )


@pytest.mark.parametrize(
    ("body", "framed"),
    [(b"hello", b"5\r\nhello\r\n0\r\n\r\n"), (b"", b"0\r\n\r\n")],
    ids=["one-chunk", "empty"],
)
def test_a_chunked_request_body_goes_as_one_chunk_and_the_last(body: bytes, framed: bytes) -> None:
    request = httpx.Request("POST", "http://127.0.0.1/p", headers={"Transfer-Encoding": "chunked"})
    head = b"POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert bytes(serialize_request(request, body)) == head + framed


def test_a_header_that_only_mentions_transfer_encoding_does_not_chunk() -> None:
    request = httpx.Request(
        "POST", "http://127.0.0.1/p", headers={"X-Note": "no transfer-encoding here"}
    )
    assert bytes(serialize_request(request, b"{}")).endswith(b"here\r\n\r\n{}")


async def test_a_streamed_request_body_arrives_whole_in_its_chunk() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b'{"user_ids": '
        yield b'["u1"]}'

    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        received.append(await reader.readuntil(b"\r\n0\r\n\r\n"))
        writer.write(OK)
        await writer.drain()
        writer.close()

    async with serving(handler) as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            response = await send(transport, url, method="POST", content=parts())
        finally:
            await transport.aclose()
    assert response.status_code == 200
    assert b"Transfer-Encoding: chunked" in received[0]
    assert received[1] == b'14\r\n{"user_ids": ["u1"]}\r\n0\r\n\r\n'


@pytest.mark.parametrize(
    "header", [b"", b"X-Mode: chunked\r\n"], ids=["no-length", "chunked-elsewhere"]
)
async def test_a_body_without_length_or_chunks_ends_with_the_connection(header: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + header + b"\r\n" + b'{"to": "the close"}'
    async with scripted(constant(answer), close_after_answer=True) as (url, server, transport):
        assert (await send(transport, url)).content == b'{"to": "the close"}'
        assert (await send(transport, url)).content == b'{"to": "the close"}'
    assert server.connections == 2, "not reused: its end was the close"


async def test_a_chunked_body_cut_by_the_close_is_incomplete() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"
    async with scripted(constant(answer), close_after_answer=True) as (url, _, transport):
        with pytest.raises(httpx.RemoteProtocolError, match="complete response"):
            await send(transport, url)


def test_a_status_line_in_pieces_keeps_its_whole_reason() -> None:
    done: list[ParsedResponse] = []
    parser = ResponseParser(done.append)
    parser.expect(is_head=False, max_body=100)
    for piece in [b"HTTP/1.1 503 Try ", b"La", b"ter\r\nContent-Length: 0\r\n\r\n"]:
        parser.feed(piece)
    assert [(response.status, response.reason) for response in done] == [(503, b"Try Later")]


@pytest.mark.parametrize("stray", [OK, b"HTTP/1.1 200 Str"], ids=["whole", "status-begun"])
async def test_a_response_nobody_asked_for_spends_the_connection(stray: bytes) -> None:
    # After the answer, in the same read, bytes that answer no request.
    async with scripted(constant(OK + stray)) as (url, server, transport):
        assert (await send(transport, url)).json() == {}
        assert (await send(transport, url)).json() == {}
    assert server.connections == 2, "not reused after bytes nobody asked for"


async def test_after_a_head_response_the_next_request_gets_its_own_body() -> None:
    async def reply(head: bytes, number: int) -> bytes:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
        return answer if head.startswith(b"HEAD ") else answer + b"0123456789"

    async with scripted(reply) as (url, server, transport):
        assert (await send(transport, url, method="HEAD")).content == b""
        assert (await send(transport, url)).content == b"0123456789"
    assert server.connections == 2, "not reused after a HEAD: its body was announced"


async def test_codings_in_two_header_lines_are_undone_in_reverse() -> None:
    encoded = gzip.compress(zlib.compress(b'{"z": 1}'))
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(encoded), encoded)
    )
    async with scripted(constant(answer)) as (url, _, transport):
        assert (await send(transport, url)).content == b'{"z": 1}'


async def test_only_content_encoding_says_how_a_body_is_encoded() -> None:
    # Another header of the same length (16) naming a coding changes nothing.
    answer = b"HTTP/1.1 200 OK\r\nX-Was-Encoding-1: gzip\r\nContent-Length: 2\r\n\r\n{}"
    async with scripted(constant(answer)) as (url, _, transport):
        assert (await send(transport, url)).content == b"{}"


def test_an_interim_response_leaves_nothing_of_itself_in_the_real_one() -> None:
    done: list[ParsedResponse] = []
    parser = ResponseParser(done.append)
    parser.expect(is_head=False, max_body=100)
    parser.feed(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    [response] = done
    assert (response.status, response.reason, response.body) == (200, b"OK", [b"{}"])
    assert response.headers == [(b"Content-Length", b"2")]


def test_an_interim_responses_content_encoding_is_not_the_real_ones() -> None:
    # A 103 naming a coding, then a plain 200: its body is taken as it is,
    # not run through the 103's gzip decoder (an "invalid gzip body").
    done: list[ParsedResponse] = []
    parser = ResponseParser(done.append)
    parser.expect(is_head=False, max_body=100)
    parser.feed(b"HTTP/1.1 103 Early Hints\r\nContent-Encoding: gzip\r\n\r\n")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    [response] = done
    assert response.body == [b"{}"]


def test_the_head_of_the_real_response_after_an_interim_one_is_capped_as_it_grows() -> None:
    parser = ResponseParser(lambda response: None)
    parser.expect(is_head=False, max_body=100)
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n")
    parser.feed(b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * (MAX_HEAD_LINE_BYTES - 8))
    with pytest.raises(ResponseTooLarge):
        parser.feed(b"v")


async def test_an_http_1_0_response_says_so_and_its_connection_is_not_reused() -> None:
    answer = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    async with scripted(constant(answer)) as (url, server, transport):
        for _ in range(2):
            response = await send(transport, url)
            assert (response.http_version, response.content) == ("HTTP/1.0", b"{}")
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols unasked"),
        (b"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\n{}", "status code 000 is not"),
        (b"HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\n{}", "status code 099 is not"),
    ],
    ids=["101-without-upgrade", "status-000", "status-099"],
)
async def test_statuses_no_request_asked_for_are_protocol_errors(answer: bytes, match: str) -> None:
    # llhttp takes both: a 101 pauses it ("Pause on CONNECT/Upgrade"), a 000
    # would be an APIStatusError "-> 0" with the body of a response.
    async with scripted(constant(answer), close_after_answer=True) as (url, _, transport):
        with pytest.raises(httpx.RemoteProtocolError, match=match):
            await send(transport, url)


def test_trailers_are_dropped_and_change_nothing_of_the_response() -> None:
    done: list[ParsedResponse] = []
    parser = ResponseParser(done.append)
    parser.expect(is_head=False, max_body=100)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
    parser.feed(b"Content-Encoding: gzip\r\nX-Checksum: 1\r\n\r\n")
    [response] = done
    assert response.body == [b"{}"]
    assert response.headers == [(b"Transfer-Encoding", b"chunked")]


def test_trailers_count_under_the_head_cap() -> None:
    parser = ResponseParser(lambda response: None)
    parser.expect(is_head=False, max_body=100)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
    field = b"X-Trailer: " + b"t" * 1000 + b"\r\n"
    with pytest.raises(ResponseTooLarge) as info:  # noqa: PT012 - which field tips it over
        for _ in range(MAX_HEAD_BYTES // len(field) + 2):
            parser.feed(field)
    assert info.value.cap == "head"


def test_a_trailer_line_still_arriving_is_capped_as_it_grows() -> None:
    parser = ResponseParser(lambda response: None)
    parser.expect(is_head=False, max_body=100)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: ")
    parser.feed(b"t" * (MAX_HEAD_LINE_BYTES - 5))
    with pytest.raises(ResponseTooLarge) as info:
        parser.feed(b"t")
    assert info.value.cap == "head line"


def test_chunk_data_without_line_feeds_is_not_taken_for_a_trailer_line() -> None:
    done: list[ParsedResponse] = []
    parser = ResponseParser(done.append)
    parser.expect(is_head=False, max_body=10 * MAX_HEAD_LINE_BYTES)
    size = 4 * MAX_HEAD_LINE_BYTES
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % size)
    for _ in range(4):
        parser.feed(b"x" * MAX_HEAD_LINE_BYTES)
    parser.feed(b"\r\n0\r\n\r\n")
    assert b"".join(done[0].body) == b"x" * size
