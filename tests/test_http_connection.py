"""
One connection (`journey_async._http._connection`): the read timeout,
bodies ended by the close, a cancelled exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import struct
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from manual_clock import ManualClockLoop
from scripted import OK, ScriptedServer, constant, scripted, send, serving

from journey_async._http import AttemptTimeout, HTTP11Transport
from journey_async._http._connection import Connection, connect


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


# --- one Connection, driven directly --------------------------------------------------------

REQUEST_BYTES = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def connected(port: int) -> Connection:
    loop = asyncio.get_running_loop()
    request = httpx.Request("GET", f"http://127.0.0.1:{port}/")
    return await connect(loop, "127.0.0.1", port, tls=None, connect_timeout=None, request=request)


@contextlib.asynccontextmanager
async def listening(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        await handler(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        # Each handler ends once the client closed its connection.
        await spin_until(lambda: all(task.done() for task in handlers))
        await server.wait_closed()
        for _ in range(3):  # the closed transports' last callbacks
            await asyncio.sleep(0)


def answering(*answers: bytes | None) -> Callable[..., Awaitable[None]]:
    """A server that answers the requests of each connection with *answers*
    in turn (None: silence), then keeps the connection open."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for answer in answers:
                await reader.readuntil(b"\r\n\r\n")
                if answer is not None:
                    writer.write(answer)
            await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return serve


async def spin_until(condition: Callable[[], bool]) -> None:
    """Turns of the loop until *condition* holds; a bound on the wall clock
    (not the loop's, which a test may have frozen) in case it never does."""
    give_up = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < give_up, "never happened"
        await asyncio.sleep(0)


async def turns_for(seconds: float) -> None:
    """Turns of the loop for *seconds* of the wall clock."""
    until = time.monotonic() + seconds
    await spin_until(lambda: time.monotonic() >= until)


@contextlib.contextmanager
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """What reaches the running loop's exception handler (a protocol
    callback that raised, for one)."""
    loop = asyncio.get_running_loop()
    caught: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda loop, context: caught.append(context))
    try:
        yield caught
    finally:
        loop.set_exception_handler(previous)


async def test_bytes_nobody_asked_for_close_the_connection() -> None:
    # Before the first request (a server's banner) and between two: the
    # connection cannot be trusted with a request any more.
    async def early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await answering(OK)(reader, writer)

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)  # after the answer was taken
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await answering()(reader, writer)

    with loop_errors() as errors:
        async with listening(early) as port:
            connection = await connected(port)
            try:
                await spin_until(lambda: connection.closed)
                assert not connection.received
                assert not connection.is_usable()
            finally:
                connection.close()
        async with listening(late) as port:
            connection = await connected(port)
            try:
                response = await connection.exchange(
                    REQUEST_BYTES, is_head=False, read_timeout=5.0, max_body=100
                )
                assert response.status == 200
                await spin_until(lambda: connection.closed)
                assert not connection.is_usable()
            finally:
                connection.close()
    assert not errors


async def test_a_connection_the_server_said_to_close_is_not_usable_while_still_open() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with listening(answering(answer)) as port:
        connection = await connected(port)
        try:
            await connection.exchange(REQUEST_BYTES, is_head=False, read_timeout=5.0, max_body=100)
            assert connection.transport is not None
            assert not connection.transport.is_closing(), "the server keeps it open"
            assert not connection.keep_alive
            assert not connection.is_usable()
        finally:
            connection.close()


async def test_an_answer_after_its_exchange_was_cancelled_is_dropped() -> None:
    # The waiter is cancelled (a timeout, say) and, before the task runs
    # again, the loop hands over the answer, bytes that are not HTTP, or a
    # body ended by the close: each is dropped, nothing raised in the
    # protocol's callbacks.
    close_delimited = b"HTTP/1.0 200 OK\r\n\r\nuntil the close"
    async with listening(answering(None)) as port:
        for arrived in (OK, b"not HTTP at all\r\n\r\n", close_delimited):
            connection = await connected(port)
            try:
                task = asyncio.ensure_future(
                    connection.exchange(
                        REQUEST_BYTES, is_head=False, read_timeout=5.0, max_body=100
                    )
                )
                await asyncio.sleep(0.05)  # the request is out, no answer
                task.cancel()
                connection.data_received(arrived)  # raised InvalidStateError when it set a result
                if arrived is close_delimited:
                    connection.connection_lost(None)  # the body is complete now
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert connection.closed
            finally:
                connection.close()


async def test_a_reset_connection_is_a_read_error_with_the_systems_reason() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # an RST, not a FIN

    async with listening(reset) as port:
        connection = await connected(port)
        try:
            with pytest.raises(httpx.ReadError, match="reset by peer"):
                await connection.exchange(
                    REQUEST_BYTES, is_head=False, read_timeout=5.0, max_body=100
                )
        finally:
            connection.close()


# --- its one timer, on a loop whose clock the test moves ---------------------------------


def on_frozen_clock(scenario: Callable[[ManualClockLoop], Awaitable[None]]) -> None:
    loop = ManualClockLoop(Connection._check_timeouts)
    try:
        loop.run_until_complete(scenario(loop))
    finally:
        loop.close()


async def exchanged(task: asyncio.Future[Any]) -> Any:
    await spin_until(task.done)
    return task.result()


def test_one_timer_serves_the_requests_of_a_connection_and_carries_the_next_deadline() -> None:
    async def scenario(loop: ManualClockLoop) -> None:
        async with listening(answering(OK, OK, None)) as port:
            connection = await connected(port)
            try:
                for _ in range(2):  # the same bound, at the same time: the same timer
                    task = asyncio.ensure_future(
                        connection.exchange(
                            REQUEST_BYTES, is_head=False, read_timeout=1.0, max_body=100
                        )
                    )
                    assert (await exchanged(task)).status == 200
                assert loop.timers == 1
                # No read timeout, an attempt deadline later than the timer:
                # the timer, when it fires, is set again for the deadline.
                silent = asyncio.ensure_future(
                    connection.exchange(
                        REQUEST_BYTES,
                        is_head=False,
                        read_timeout=None,
                        max_body=100,
                        deadline=1005.0,
                        attempt_timeout=5.0,
                    )
                )
                await turns_for(0.05)  # the request goes out; no timer on this clock
                assert loop.timers == 1
                loop.now = 1001.0
                await spin_until(lambda: loop.timers == 2)
                assert not silent.done()
                loop.now = 1005.0  # the deadline itself
                await spin_until(silent.done)
                with pytest.raises(AttemptTimeout, match=r"attempt_timeout \(5 s\)"):
                    silent.result()
            finally:
                connection.close()

    on_frozen_clock(scenario)


def test_a_read_timeout_longer_than_the_timer_is_set_again_and_ends_at_its_bound() -> None:
    async def scenario(loop: ManualClockLoop) -> None:
        async with listening(answering(OK, None)) as port:
            connection = await connected(port)
            try:
                first = asyncio.ensure_future(
                    connection.exchange(
                        REQUEST_BYTES, is_head=False, read_timeout=1.0, max_body=100
                    )
                )
                await exchanged(first)
                silent = asyncio.ensure_future(
                    connection.exchange(
                        REQUEST_BYTES, is_head=False, read_timeout=2.0, max_body=100
                    )
                )
                await turns_for(0.05)  # the request goes out; no timer on this clock
                loop.now = 1001.0  # the timer set for the first request fires
                await spin_until(lambda: loop.timers == 2)
                assert not silent.done()
                loop.now = 1002.0  # two seconds of silence, exactly
                await spin_until(silent.done)
                with pytest.raises(httpx.ReadTimeout, match="for 2 s"):
                    silent.result()
            finally:
                connection.close()

    on_frozen_clock(scenario)


def test_a_deadline_alone_sets_the_timer_and_no_bound_sets_none() -> None:
    async def scenario(loop: ManualClockLoop) -> None:
        async with listening(answering(OK, None)) as port:
            connection = await connected(port)
            try:
                unbounded = asyncio.ensure_future(
                    connection.exchange(
                        REQUEST_BYTES, is_head=False, read_timeout=None, max_body=100
                    )
                )
                assert (await exchanged(unbounded)).status == 200
                assert loop.timers == 0
                silent = asyncio.ensure_future(
                    connection.exchange(
                        REQUEST_BYTES,
                        is_head=False,
                        read_timeout=None,
                        max_body=100,
                        deadline=1003.0,
                        attempt_timeout=3.0,
                    )
                )
                await turns_for(0.05)
                assert loop.timers == 1
                loop.now = 1003.0
                await spin_until(silent.done)
                with pytest.raises(AttemptTimeout):
                    silent.result()
            finally:
                connection.close()

    on_frozen_clock(scenario)


async def test_a_connection_is_closed_from_the_moment_it_is_closed() -> None:
    # Not only once the loop reports the loss: whoever looks in between
    # (the pool handing it back) must not take it for open.
    async with listening(answering(OK)) as port:
        connection = await connected(port)
        await connection.exchange(REQUEST_BYTES, is_head=False, read_timeout=5.0, max_body=100)
        assert connection.keep_alive
        connection.close()
        assert connection.closed
        assert not connection.keep_alive
