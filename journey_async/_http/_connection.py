"""
One HTTP/1.1 connection: an `asyncio.Protocol` that writes a request and
wakes the request's task once its response is whole, failed or timed out.

It relies on nothing but the `asyncio.Protocol` / `asyncio.Transport`
interface, so it runs the same on asyncio's own loop, in its debug mode and
on uvloop, whose transports are of other classes.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Final, cast

import httpx

from ._wire import ParsedResponse, ResponseParser

__all__ = ["HAPPY_EYEBALLS_DELAY", "Connection", "connect"]

HAPPY_EYEBALLS_DELAY: Final = 0.25
"""Seconds before the next resolved address is tried while one is still
connecting (RFC 8305's recommended value): a name with an unreachable IPv6
address and a working IPv4 one connects almost as fast as IPv4 alone."""


class Connection(asyncio.Protocol):
    """
    One HTTP/1.1 connection; see the module's docstring.

    Attributes:
        closed: The connection is closed, or closing.
        received: Bytes of a response to the current request arrived.
        idle_since: Loop time it was last handed back idle.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = ResponseParser(self._response_complete)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.received = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[ParsedResponse] | None = None
        self._last_read = 0.0
        self._read_timeout: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may take another request."""
        parser = self._parser
        return parser.keep_alive and not parser.spent and not self.closed

    def is_usable(self) -> bool:
        """Open, and no EOF seen (connection_lost may not have run yet)."""
        transport = self.transport
        return self.keep_alive and transport is not None and not transport.is_closing()

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Whatever class the loop uses (uvloop's are not asyncio.Transport's
        # subclasses): a stream transport is what create_connection gives.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for: this connection cannot be trusted again.
            self.close()
            return
        self.received = True
        if self._read_timeout is not None:
            self._last_read = self._loop.time()
        try:
            self._parser.feed(data)
        except httpx.TransportError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None:
            return
        if exc is None and self._parser.finish_at_close() is not None:
            return  # a body delimited by the close: complete now
        if exc is None:
            self._fail(
                httpx.RemoteProtocolError(
                    "server disconnected without sending a complete response"
                    if self.received
                    else "server disconnected without sending a response"
                )
            )
        else:
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__))

    # --- the request side ---

    async def exchange(
        self, data: bytes, *, is_head: bool, read_timeout: float | None
    ) -> ParsedResponse:
        """Write *data* (a whole request) and wait for the whole response."""
        assert self.transport is not None
        loop = self._loop
        waiter: asyncio.Future[ParsedResponse] = loop.create_future()
        self._waiter = waiter
        self._parser.expect(is_head=is_head)
        self.received = False
        self.transport.write(data)
        self._read_timeout = read_timeout
        if read_timeout is not None:
            # One timer per connection, not per request: it is re-armed only
            # when this request must time out sooner than it would fire, and
            # otherwise checks, when it fires, whatever request is current.
            self._last_read = now = loop.time()
            timer = self._timer
            if timer is None or timer.when() > now + read_timeout:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(now + read_timeout, self._check_read_timeout)
        try:
            return await waiter
        except BaseException:
            # Failed, timed out or cancelled mid-exchange: the connection is
            # in an unknown state, so it is not reused.
            self.close()
            raise
        finally:
            self._waiter = None
            self._read_timeout = None  # a pending timer finds nothing to time

    def _response_complete(self, response: ParsedResponse) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():  # not cancelled meanwhile
            waiter.set_result(response)

    def _check_read_timeout(self) -> None:
        self._timer = None
        read_timeout = self._read_timeout
        if read_timeout is None or self._waiter is None:
            return
        deadline = self._last_read + read_timeout
        if self._loop.time() >= deadline:
            self._fail(httpx.ReadTimeout(f"no data from the server for {read_timeout:g} s"))
        else:
            self._timer = self._loop.call_at(deadline, self._check_read_timeout)

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()


async def connect(
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None,
    connect_timeout: float | None,
    request: httpx.Request,
) -> Connection:
    """
    A new connection to *host*:*port* (TLS with *tls*), every resolved
    address tried, as `loop.create_connection` does with happy eyeballs.

    Raises `httpx.ConnectTimeout` after *connect_timeout*, `httpx.ConnectError`
    when no address accepts (refused, unreachable, DNS, TLS).
    """
    # asyncio's loop races the addresses (happy eyeballs); uvloop has no
    # such option and tries them one after the other.
    eyeballs: dict[str, Any] = (
        {"happy_eyeballs_delay": HAPPY_EYEBALLS_DELAY, "interleave": 1}
        if isinstance(loop, asyncio.BaseEventLoop)
        else {}
    )
    try:
        async with asyncio.timeout(connect_timeout):
            _, connection = await loop.create_connection(
                lambda: Connection(loop),
                host,
                port,
                ssl=tls,
                server_hostname=host if tls is not None else None,
                **eyeballs,
            )
    except TimeoutError:
        raise httpx.ConnectTimeout(
            f"connecting to {host}:{port} took longer than {connect_timeout} s", request=request
        ) from None
    except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError)
        raise httpx.ConnectError(
            f"cannot connect to {host}:{port}: {exc}", request=request
        ) from exc
    return connection
