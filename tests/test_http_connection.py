"""
One connection (`journey_async._http._connection`): the read timeout,
bodies ended by the close, a cancelled exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings

import httpx
import pytest
from scripted import OK, ScriptedServer, constant, scripted, send, serving

from journey_async._http import HTTP11Transport


async def test_a_cancelled_request_gives_its_connection_slot_back() -> None:
    async def reply(head: bytes, number: int) -> bytes:
        await asyncio.sleep(5.0 if b"/slow" in head else 0.0)
        return OK

    async with scripted(reply, max_connections=1) as (url, server, transport):
        slow = asyncio.ensure_future(send(transport, url + "/slow"))
        await asyncio.sleep(0.05)
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow
        async with asyncio.timeout(5):
            assert (await send(transport, url + "/fast")).status_code == 200
    assert server.connections == 2, "the cancelled connection was not reused"


async def test_the_read_timeout_is_for_silence_not_for_the_whole_response() -> None:
    async def reply(head: bytes, number: int) -> bytes:
        if b"/slow" in head:
            await asyncio.sleep(1.0)
        return OK

    class Dripping(ScriptedServer):
        async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            for byte in b"12345":
                await asyncio.sleep(0.06)
                writer.write(bytes([byte]))
            await writer.drain()
            writer.close()

    async with scripted(reply) as (url, _, transport):
        await send(transport, url, timeouts=httpx.Timeout(10.0))
        # Same connection, a shorter timeout: it applies at once, not after
        # the 10 s the connection's timer was armed for.
        async with asyncio.timeout(0.9):
            with pytest.raises(httpx.ReadTimeout):
                await send(transport, url + "/slow", timeouts=httpx.Timeout(10.0, read=0.05))
    dripping = Dripping(reply)
    async with dripping.running() as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            response = await send(transport, url, timeouts=httpx.Timeout(10.0, read=0.2))
        finally:
            await transport.aclose()
    assert response.content == b"12345", "0.3 s in all, never 0.2 s of silence"


async def test_a_body_ended_by_the_close_and_an_http_1_0_response() -> None:
    answer = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
    async with scripted(constant(answer), close_after_answer=True) as (url, server, transport):
        for _ in range(2):
            response = await send(transport, url)
            assert response.content == b"until the end"
            assert response.http_version == "HTTP/1.0"
    assert server.connections == 2, "not reused after a close-delimited body"


async def test_a_cancelled_exchange_closes_its_connection() -> None:
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read()  # no answer; b"" once the client closes
        closed.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    transport = HTTP11Transport(max_connections=1)
    try:
        pending = asyncio.ensure_future(send(transport, url))
        await asyncio.sleep(0.05)
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
        async with asyncio.timeout(5):
            await closed.wait()  # closed now, not when the transport is
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()


async def test_a_connection_that_broke_mid_response_is_not_retried() -> None:
    async def reply(head: bytes, number: int) -> bytes | None:
        # The second request on the connection gets half an answer, then the close.
        return OK if number == 0 else b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12"

    class HalfThenClose(ScriptedServer):
        async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            number = 0
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    self.heads.append(head)
                    writer.write(await reply(head, number) or b"")
                    await writer.drain()
                    if number:
                        return
                    number += 1
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            finally:
                writer.close()

    server = HalfThenClose(reply)
    async with server.running() as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            assert (await send(transport, url)).status_code == 200
            with pytest.raises(httpx.RemoteProtocolError, match="complete response"):
                await send(transport, url)
        finally:
            await transport.aclose()
    assert len(server.heads) == 2, "a GET that got bytes back is not sent again"


async def test_a_connect_cancelled_while_the_socket_opens_closes_it() -> None:
    # One address, connected to directly; a name with several, raced, is
    # tests/test_http_eyeballs.py's.
    from journey_async._http._connection import connect

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    request = httpx.Request("GET", f"http://127.0.0.1:{port}/")

    async def connect_and_close() -> None:
        connection = await connect(
            loop, "127.0.0.1", port, tls=None, connect_timeout=5.0, request=request
        )
        connection.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for turns in range(1, 12):
            attempts = [asyncio.ensure_future(connect_and_close()) for _ in range(20)]
            for _ in range(turns):
                await asyncio.sleep(0)
            for attempt in attempts:
                attempt.cancel()
            await asyncio.gather(*attempts, return_exceptions=True)
        await asyncio.sleep(0.05)  # the closed transports' last callbacks
        gc.collect()
    server.close()
    await server.wait_closed()
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, f"{len(unclosed)} sockets left unclosed: {unclosed[0].message}"


async def test_a_connection_the_server_said_to_close_is_not_reused_even_left_open() -> None:
    # The server says "Connection: close" but keeps the socket open and would
    # answer again: the client still takes a new connection.
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with scripted(constant(answer)) as (url, server, transport):
        for _ in range(2):
            assert (await send(transport, url)).json() == {}
    assert server.connections == 2


async def test_silence_after_part_of_a_response_is_a_read_timeout() -> None:
    ended = asyncio.Event()

    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
            await writer.drain()
            with contextlib.suppress(ConnectionError):
                await reader.read()  # silent until the client gives up
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            ended.set()

    async with serving(half) as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            async with asyncio.timeout(5):
                with pytest.raises(httpx.ReadTimeout):
                    await send(transport, url, timeouts=httpx.Timeout(5.0, read=0.1))
                await ended.wait()
        finally:
            await transport.aclose()


async def test_a_connection_closed_before_its_request_went_out_fails_at_once() -> None:
    # A server that writes as soon as it accepts: those bytes, unasked, close
    # the new connection, whose connection_lost may run before the request
    # is handed to it. The exchange then fails at once, never sent, instead
    # of waiting out its read timeout for an answer that cannot come.
    from journey_async._http._connection import connect

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    async with serving(greet) as url:
        port = int(url.rpartition(":")[2])
        loop = asyncio.get_running_loop()
        request = httpx.Request("GET", url)
        connection = await connect(
            loop, "127.0.0.1", port, tls=None, connect_timeout=5.0, request=request
        )
        async with asyncio.timeout(5):
            while not connection.closed:  # noqa: ASYNC110 - the greeting came, unasked
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # and connection_lost ran
            with pytest.raises(httpx.RemoteProtocolError, match="before the request was sent"):
                await connection.exchange(
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    is_head=False,
                    read_timeout=60.0,
                    max_body=100,
                )
        assert not connection.sent


async def test_bytes_before_the_request_went_out_are_not_its_answer() -> None:
    # Only a hostile peer does it; a response parsed then would confirm a
    # request (a removal) that was never sent.
    from journey_async._http._connection import Connection

    class Transport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.written: list[bytes] = []
            self.aborted = False

        def write(self, data: bytes | bytearray | memoryview) -> None:
            self.written.append(bytes(data))

        def is_closing(self) -> bool:
            return self.aborted

        def abort(self) -> None:
            self.aborted = True

    loop = asyncio.get_running_loop()
    connection = Connection(loop)
    transport = Transport()
    connection.connection_made(transport)
    exchange = asyncio.ensure_future(
        connection.exchange(
            b"POST / HTTP/1.1\r\n\r\n", is_head=False, read_timeout=None, max_body=100
        )
    )
    await asyncio.sleep(0)  # the exchange is waiting; its write is the loop's next turn
    connection.data_received(b'HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{"success":true}')
    with pytest.raises(httpx.RemoteProtocolError, match="answered before the request was sent"):
        await exchange
    assert transport.written == []
    assert transport.aborted
