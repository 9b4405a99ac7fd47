"""
Response bodies decoded as they arrive, within the cap
(`journey_async._http._decoding`): every coding advertised, against a real
compressing server, and bombs that would inflate far past the cap.
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import anyio
import brotli
import httpx
import pytest
import zstandard
from asgi_servers import serve_app
from scripted import OK, constant, scripted, send
from served import nginx
from starlette.middleware.gzip import GZipMiddleware

import journey_async as ja
from journey_async._http import ResponseTooLarge, _decoding
from journey_async._http._body import send_and_read
from journey_async._http._decoding import ACCEPT_ENCODING, MAX_CODINGS, Overflow, decoder_for
from journey_async.testing import JourneyEmulator

TOKEN = "test-token"  # the emulator's default
BODY = b'{"payload": {"title": "t", "points": []}}' * 50

ENCODED = {
    "gzip": gzip.compress(BODY),
    "deflate": zlib.compress(BODY),
    "br": brotli.compress(BODY),
    "zstd": zstandard.ZstdCompressor().compress(BODY),
}


def test_accept_encoding_names_exactly_what_is_decoded() -> None:
    assert ACCEPT_ENCODING == "gzip, deflate, br, zstd"
    for coding in ENCODED:
        assert decoder_for(coding.encode()) is not None
    assert decoder_for(b"identity") is None
    assert decoder_for(b"compress") is None, "unasked: kept as is, as httpx does"


@pytest.mark.parametrize("coding", sorted(ENCODED))
def test_each_coding_decodes_in_pieces(coding: str) -> None:
    decoder = decoder_for(coding.encode())
    assert decoder is not None
    data = ENCODED[coding]
    out = b"".join(decoder.decode(data[i : i + 7], len(BODY)) for i in range(0, len(data), 7))
    decoder.flush()
    assert out == BODY


def test_raw_deflate_and_stacked_codings() -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    decoder = decoder_for(b"deflate")
    assert decoder is not None
    assert decoder.decode(raw.compress(BODY) + raw.flush(), len(BODY)) == BODY
    stacked = decoder_for(b"gzip, br")  # br applied last, undone first
    assert stacked is not None
    assert stacked.decode(brotli.compress(gzip.compress(BODY)), len(BODY)) == BODY


def test_a_body_not_in_its_coding_is_a_decoding_error() -> None:
    for coding in ENCODED:
        decoder = decoder_for(coding.encode())
        assert decoder is not None
        with pytest.raises(httpx.DecodingError, match=coding):
            decoder.decode(b"\xff not compressed at all \xff" * 4, 1000)
    truncated = decoder_for(b"gzip")
    assert truncated is not None
    truncated.decode(ENCODED["gzip"][:-8], len(BODY))
    with pytest.raises(httpx.DecodingError, match="end marker"):
        truncated.flush()


BOMB_BYTES = 64 * 1024 * 1024  # what the bombs inflate to
CAP = 1024 * 1024


def bombs() -> dict[str, bytes]:
    zeros = b"\0" * (8 * 1024 * 1024)
    gz = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    br = brotli.Compressor()
    zs = zstandard.ZstdCompressor().compressobj()
    parts: dict[str, list[bytes]] = {"gzip": [], "br": [], "zstd": []}
    for _ in range(BOMB_BYTES // len(zeros)):
        parts["gzip"].append(gz.compress(zeros))
        parts["br"].append(br.process(zeros))
        parts["zstd"].append(zs.compress(zeros))
    parts["gzip"].append(gz.flush())
    parts["br"].append(br.finish())
    parts["zstd"].append(zs.flush())
    return {coding: b"".join(chunks) for coding, chunks in parts.items()}


@pytest.fixture(scope="module")
def bomb() -> dict[str, bytes]:
    return bombs()


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_a_bomb_stops_at_the_cap_without_inflating(bomb: dict[str, bytes], coding: str) -> None:
    decoder = decoder_for(coding.encode())
    assert decoder is not None
    data = bomb[coding]
    assert len(data) < CAP, "small on the wire"

    def decode_all() -> None:
        room = CAP
        for i in range(0, len(data), 65536):
            room -= len(decoder.decode(data[i : i + 65536], room))

    tracemalloc.start()
    try:
        with pytest.raises(Overflow):
            decode_all()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * CAP, f"{coding}: {peak} bytes held for a {CAP}-byte cap"


async def test_a_gzip_bomb_over_the_transport_is_response_too_large(
    bomb: dict[str, bytes],
) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
        % len(bomb["gzip"])
        + bomb["gzip"]
    )

    async def reply(head: bytes, number: int) -> bytes:
        return answer

    async with scripted(reply) as (url, _, transport):
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLarge) as info:
                await send(transport, url, max_body=CAP)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (info.value.cap, info.value.limit) == ("max_response_bytes", CAP)
        assert "max_response_bytes" in str(info.value)
        assert peak < 4 * CAP + 2 * len(answer)


# --- against real compressing servers -----------------------------------------------------


def copied_headers(app: Any) -> Any:
    """Starlette's GZipMiddleware rewrites a response's header list in place,
    and the emulator may hand the same list out again: a copy each time."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def send_copy(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message["headers"])}
            await send(message)

        await app(scope, receive, send_copy)

    return wrapped


@pytest.fixture(scope="module")
def gzip_server() -> Iterator[tuple[str, JourneyEmulator]]:
    """The emulator behind Starlette's GZipMiddleware, served by uvicorn."""
    emulator = JourneyEmulator.with_sample_data(3, seed=2)
    with serve_app(GZipMiddleware(copied_headers(emulator), minimum_size=10)) as url:
        yield url, emulator


async def test_a_gzip_compressing_server_is_decoded_transparently(
    gzip_server: tuple[str, JourneyEmulator],
) -> None:
    url, emulator = gzip_server
    journey_id = emulator.journey_ids[0]
    async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=None) as client:
        stats = await client.get_stats(journey_id)
        response = await client._send("GET", f"/api/journey/{journey_id}/statistics/external")
    assert stats.title
    assert response.headers["content-encoding"] == "gzip", "it did compress"


async def test_the_client_asks_for_what_it_decodes() -> None:
    async with (
        scripted(constant(OK)) as (url, server, _),
        ja.AsyncJourneyClient(TOKEN, base_url=url, retry=None) as client,
    ):
        await client._send("GET", "/x")
    assert f"Accept-Encoding: {ACCEPT_ENCODING}\r\n".encode() in server.heads[0]


async def test_the_cap_holds_against_a_real_compressing_server(
    gzip_server: tuple[str, JourneyEmulator],
) -> None:
    url, emulator = gzip_server
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=url, retry=None, max_response_bytes=64
    ) as client:
        with pytest.raises(ja.ResponseTooLargeError) as info:
            await client.get_stats(emulator.journey_ids[0])
    assert (info.value.cap, info.value.limit) == ("max_response_bytes", 64)
    assert "AsyncJourneyClient(max_response_bytes=...)" in str(info.value)


NGINX_GZIP_ON = """
    gzip on;
    gzip_min_length 10;
    gzip_types application/json;
    gzip_proxied any;
"""


@pytest.fixture(scope="module")
def nginx_gzip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, JourneyEmulator]]:
    """A real nginx with ``gzip on`` proxying to the emulator served by uvicorn."""
    emulator = JourneyEmulator.with_sample_data(2, seed=4)
    with (
        serve_app(emulator) as upstream,
        nginx(tmp_path_factory.mktemp("nginx"), upstream, http=NGINX_GZIP_ON) as url,
    ):
        yield url, emulator


async def test_behind_nginx_gzip_on(nginx_gzip: tuple[str, JourneyEmulator]) -> None:
    base_url, emulator = nginx_gzip
    path = f"/api/journey/{emulator.journey_ids[0]}/statistics/external"
    async with ja.AsyncJourneyClient(TOKEN, base_url=base_url) as client:
        # The retries cover nginx's start-up; it listens in milliseconds.
        stats = await client.get_stats(emulator.journey_ids[0])
        response = await client._send("GET", path)
    assert stats.title
    assert response.headers.get("content-encoding") == "gzip"


def test_decoding_holds_on_the_httpcore_handover(
    gzip_server: tuple[str, JourneyEmulator],
) -> None:
    # On trio the default transport hands requests over to httpcore; the
    # body is still decoded here.
    url, emulator = gzip_server
    journey_id = emulator.journey_ids[0]

    async def scenario() -> None:
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=None) as client:
            path = f"/api/journey/{journey_id}/statistics/external"
            response = await client._send("GET", path)
            assert response.headers["content-encoding"] == "gzip"
            assert (await client.get_stats(journey_id)).title

    anyio.run(scenario, backend="trio")


async def test_the_cap_holds_on_a_streamed_httpcore_response(
    gzip_server: tuple[str, JourneyEmulator],
) -> None:
    url, emulator = gzip_server
    async with ja.AsyncJourneyClient(
        TOKEN,
        base_url=url,
        retry=None,
        max_response_bytes=64,
        transport=httpx.AsyncHTTPTransport(),
    ) as client:
        with pytest.raises(ja.ResponseTooLargeError):
            await client.get_stats(emulator.journey_ids[0])


def test_a_zstd_window_up_to_8_mib_is_decoded_and_a_byte_more_is_not() -> None:
    # A frame holding its whole content in one segment has that size as its
    # window: 8 MiB of zeros is, 8 MiB and one byte is over RFC 8878's bound.
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=24)
    compressor = zstandard.ZstdCompressor(compression_params=params)
    size = 8 * 1024 * 1024
    decoder = decoder_for(b"zstd")
    assert decoder is not None
    assert len(decoder.decode(compressor.compress(b"\0" * size), size)) == size
    over = compressor.compress(b"\0" * (size + 1))
    assert zstandard.get_frame_parameters(over).window_size == size + 1
    decoder = decoder_for(b"zstd")
    assert decoder is not None
    with pytest.raises(httpx.DecodingError, match="zstd"):
        decoder.decode(over, size + 1)


@pytest.mark.parametrize("coding", sorted(ENCODED))
def test_each_coding_fills_its_room_exactly_in_one_piece(coding: str) -> None:
    decoder = decoder_for(coding.encode())
    assert decoder is not None
    assert decoder.decode(ENCODED[coding], len(BODY)) == BODY
    decoder = decoder_for(coding.encode())
    assert decoder is not None
    with pytest.raises(Overflow):
        decoder.decode(ENCODED[coding], len(BODY) - 1)


def test_a_zstd_body_bigger_than_one_piece_of_its_writer_comes_out_whole() -> None:
    body = bytes(range(256)) * 1024  # 256 KiB: four of the writer's 64 KiB pieces
    decoder = decoder_for(b"zstd")
    assert decoder is not None
    assert decoder.decode(zstandard.ZstdCompressor().compress(body), len(body)) == body


def decode_in_pieces(coding: bytes, data: bytes, room: int, piece: int) -> bytes:
    """*data* through the *coding* decoder *piece* bytes at a time, within *room*."""
    decoder = decoder_for(coding)
    assert decoder is not None
    out = []
    for i in range(0, len(data), piece):
        part = decoder.decode(data[i : i + piece], room)
        room -= len(part)
        out.append(part)
    decoder.flush()
    return b"".join(out)


def gunzip_in_pieces(data: bytes, room: int, piece: int) -> bytes:
    return decode_in_pieces(b"gzip", data, room, piece)


@pytest.mark.parametrize("piece", [1, 7, 10**6])
def test_a_gzip_body_of_several_members_is_decoded_whole(piece: int) -> None:
    # RFC 1952: members one after the other, as `cat a.gz b.gz` or a server
    # that compresses each flush apart sends; gzip.decompress reads them all.
    members = gzip.compress(BODY[:100]) + gzip.compress(BODY[100:200]) + gzip.compress(BODY[200:])
    assert gzip.decompress(members) == BODY
    assert gunzip_in_pieces(members, len(BODY), piece) == BODY


def test_thousands_of_gzip_members_in_one_read_are_decoded_whole() -> None:
    # A server compressing each small write apart: 3,000 members arriving in
    # one read were decoded one call deeper each, a RecursionError past
    # Python's limit, and the response "malformed HTTP".
    body = b"".join(b'{"n": %d}' % n for n in range(3000))
    members = b"".join(gzip.compress(body[i : i + 8]) for i in range(0, len(body), 8))
    assert gunzip_in_pieces(members, len(body), len(members)) == body


def test_the_members_of_a_gzip_body_share_its_cap() -> None:
    members = gzip.compress(BODY) + gzip.compress(BODY)
    assert gunzip_in_pieces(members, 2 * len(BODY), 10**6) == 2 * BODY
    with pytest.raises(Overflow):
        gunzip_in_pieces(members, 2 * len(BODY) - 1, 10**6)


@pytest.mark.parametrize("piece", [1, 10**6])
def test_bytes_after_a_whole_gzip_body_that_are_no_member_are_ignored(piece: int) -> None:
    assert gunzip_in_pieces(gzip.compress(BODY) + b"\0\0 trailing", len(BODY), piece) == BODY


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_a_bomb_given_no_room_at_all_stops_without_inflating(
    bomb: dict[str, bytes], coding: str
) -> None:
    # The body is at its cap exactly and more of it arrives: no room is no
    # licence to decode without a limit (brotli reads a limit below 0 as none).
    decoder = decoder_for(coding.encode())
    assert decoder is not None
    tracemalloc.start()
    try:
        with pytest.raises(Overflow):
            decoder.decode(bomb[coding], 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * CAP, f"{coding}: {peak} bytes held for no room"


def test_x_gzip_is_gzip() -> None:
    decoder = decoder_for(b"x-gzip")  # RFC 9110 8.4.1.3: to be treated as gzip
    assert decoder is not None
    assert decoder.decode(ENCODED["gzip"], len(BODY)) == BODY


def test_without_the_compression_extra_only_zlib_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fresh copy of the module, its optional imports failing as they do
    # when brotli and zstandard are not installed.
    monkeypatch.setitem(sys.modules, "brotli", None)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    spec = importlib.util.spec_from_file_location("decoding_without_extras", _decoding.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.CODINGS == ("gzip", "deflate")
    assert module.ACCEPT_ENCODING == "gzip, deflate"
    assert module.decoder_for(b"br") is None
    assert module.decoder_for(b"zstd") is None
    assert module.decoder_for(b"gzip") is not None


def test_a_br_body_cut_short_is_refused() -> None:
    whole = brotli.compress(b'{"payload": {"title": "t", "points": []}}' * 50)
    decoder = decoder_for(b"br")
    assert decoder is not None
    decoder.decode(whole[: len(whole) // 2], 10**6)
    with pytest.raises(httpx.DecodingError, match="br body ended before its end"):
        decoder.flush()
    complete = decoder_for(b"br")
    assert complete is not None
    complete.decode(whole, 10**6)
    complete.flush()  # whole: no error
    empty = decoder_for(b"br")
    assert empty is not None
    empty.flush()  # no body at all (a HEAD, a 204): nothing to refuse


def unzstd_in_pieces(data: bytes, piece: int, room: int = 10**7) -> bytes:
    return decode_in_pieces(b"zstd", data, room, piece)


ZSTD_FRAMES = {
    "plain": zstandard.ZstdCompressor().compress(BODY),
    "checksum": zstandard.ZstdCompressor(write_checksum=True).compress(BODY),
    "no-size": zstandard.ZstdCompressor(write_content_size=False).compress(BODY),
    "raw-blocks": zstandard.ZstdCompressor(write_checksum=True).compress(bytes(range(256)) * 600),
    "empty-content": zstandard.ZstdCompressor().compress(b""),
}


@pytest.mark.parametrize("kind", sorted(ZSTD_FRAMES))
@pytest.mark.parametrize("piece", [1, 5, 10**6])
def test_a_zstd_body_cut_short_anywhere_inside_its_frame_is_refused(kind: str, piece: int) -> None:
    frame = ZSTD_FRAMES[kind]
    whole = zstandard.ZstdDecompressor().decompressobj().decompress(frame)
    assert unzstd_in_pieces(frame, piece) == whole
    for cut in range(1, len(frame), max(1, len(frame) // 40)):
        with pytest.raises(
            httpx.DecodingError, match="zstd body ended before the end of its frame"
        ):
            unzstd_in_pieces(frame[:cut], piece)
    with pytest.raises(httpx.DecodingError, match="ended before"):
        unzstd_in_pieces(frame[:-1], piece)  # its last byte missing


def test_a_zstd_body_of_several_frames_is_decoded_whole_and_cut_short_refused() -> None:
    # RFC 8878, 3.1: frames one after the other; skippable frames among them
    # carry no content.
    skippable = (0x184D2A53).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    frames = ZSTD_FRAMES["plain"] + skippable + ZSTD_FRAMES["checksum"]
    for piece in (1, 7, 10**6):
        assert unzstd_in_pieces(frames, piece) == 2 * BODY
    with pytest.raises(httpx.DecodingError, match="ended before"):
        unzstd_in_pieces(frames[:-3], 10**6)
    with pytest.raises(httpx.DecodingError, match="ended before"):
        unzstd_in_pieces(ZSTD_FRAMES["plain"] + skippable[:6], 10**6)
    with pytest.raises(Overflow):
        unzstd_in_pieces(frames, 10**6, room=2 * len(BODY) - 1)  # the frames share the cap


def test_an_empty_zstd_body_is_an_empty_body_as_for_gzip_and_br() -> None:
    for coding in (b"zstd", b"br", b"gzip"):
        decoder = decoder_for(coding)
        assert decoder is not None
        decoder.flush()  # a HEAD, a 204: no bytes at all, nothing cut short


def test_bytes_after_a_whole_zstd_body_that_are_no_frame_are_refused() -> None:
    # zstandard refuses them (unlike gzip's trailing bytes): kept so.
    with pytest.raises(httpx.DecodingError, match="zstd"):
        unzstd_in_pieces(ZSTD_FRAMES["plain"] + b"garbage!", 10**6)


def _zstd_cut_short(framing: str) -> bytes:
    cut = ZSTD_FRAMES["checksum"][: len(ZSTD_FRAMES["checksum"]) // 2]
    if framing == "content-length":  # the length sent is the cut body's
        return (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: %d\r\n\r\n" % len(cut)
            + cut
        )
    return b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nConnection: close\r\n\r\n" + cut


@pytest.mark.parametrize("framing", ["content-length", "close"])
async def test_a_zstd_body_cut_short_over_the_transport_is_a_decoding_error(framing: str) -> None:
    async with scripted(constant(_zstd_cut_short(framing)), close_after_answer=True) as (
        url,
        _,
        transport,
    ):
        with pytest.raises(httpx.DecodingError, match="zstd body ended before the end"):
            await send(transport, url)


@pytest.mark.parametrize("framing", ["content-length", "close"])
async def test_a_zstd_body_cut_short_is_a_response_format_error_for_the_client(
    framing: str,
) -> None:
    async with (
        scripted(constant(_zstd_cut_short(framing)), close_after_answer=True) as (url, _, _),
        ja.AsyncJourneyClient(TOKEN, base_url=url, retry=None) as client,
    ):
        with pytest.raises(ja.ResponseFormatError, match="zstd body ended before the end"):
            await client._send("GET", "/x")


async def test_a_whole_zstd_body_of_two_frames_over_the_transport_is_decoded() -> None:
    frames = ZSTD_FRAMES["plain"] + ZSTD_FRAMES["no-size"]
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: %d\r\n\r\n" % len(frames)
        + frames
    )
    async with scripted(constant(answer)) as (url, _, transport):
        assert (await send(transport, url)).content == 2 * BODY


# --- how many codings -----------------------------------------------------------------


def nested_gzip(body: bytes, layers: int) -> bytes:
    for _ in range(layers):
        body = gzip.compress(body)
    return body


def test_up_to_max_codings_are_undone_and_more_are_refused_before_any_decoder() -> None:
    decoder = decoder_for(b", ".join([b"gzip"] * MAX_CODINGS))
    assert decoder is not None
    assert decoder.decode(nested_gzip(BODY, MAX_CODINGS), len(BODY)) == BODY
    assert decoder_for(b", ".join([b"gzip", *[b"identity"] * 50])) is not None, "not counted"
    # A head within its caps names 13,000: a decoder each was 400 MB for one
    # response of 12,000 nested layers.
    tracemalloc.start()
    try:
        with pytest.raises(httpx.DecodingError, match=r"names 13000 content codings"):
            decoder_for(b",".join([b"gzip"] * 13000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024


def too_many_codings(status: bytes) -> bytes:
    lines = b"".join(b"Content-Encoding: %s\r\n" % b",".join([b"gzip"] * 1000) for _ in range(6))
    return b"HTTP/1.1 %s\r\n%sContent-Length: 4\r\n\r\nnope" % (status, lines)


async def test_too_many_codings_fail_a_success_and_leave_an_error_its_status() -> None:
    async with scripted(constant(too_many_codings(b"200 OK"))) as (url, _, transport):
        with pytest.raises(httpx.DecodingError, match="more than the 5 decoded"):
            await send(transport, url)
    async with scripted(constant(too_many_codings(b"503 Down"))) as (url, server, transport):
        for _ in range(2):
            response = await send(transport, url)
            assert (response.status_code, response.content) == (503, b"")
    assert server.connections == 2, "not reused: its body was not read"


@pytest.mark.parametrize("status", [200, 503])
async def test_too_many_codings_from_another_transport(status: int) -> None:
    codings = ",".join(["gzip"] * (MAX_CODINGS + 1))

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Encoding": codings}
        body = nested_gzip(BODY, MAX_CODINGS + 1)  # in its codings: refused for their number
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    request = httpx.Request("GET", "http://127.0.0.1:1/")
    if status == 200:
        with pytest.raises(httpx.DecodingError, match="more than the 5 decoded"):
            await send_and_read(httpx.MockTransport(answer), request)
        return
    response = await send_and_read(httpx.MockTransport(answer), request)
    assert (response.status_code, response.content) == (503, b"")
