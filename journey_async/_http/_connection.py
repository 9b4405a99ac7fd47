"""
One HTTP/1.1 connection: an `asyncio.Protocol` that writes a request and
wakes the request's task once its response is whole, failed or timed out.

It relies on nothing but the `asyncio.Protocol` / `asyncio.Transport`
interface, so it runs the same on asyncio's own loop, in its debug mode and
on uvloop, whose transports are of other classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, cast

import httpx

from ._eyeballs import AddrInfo, connect_first
from ._resolver import resolver_for
from ._timeouts import attempt_timed_out
from ._tls import WrongScheme, not_tls, tls_failure
from ._wire import ParsedResponse, ResponseParser

__all__ = ["HAPPY_EYEBALLS_DELAY", "Connection", "connect"]

HAPPY_EYEBALLS_DELAY: Final = 0.25
"""Seconds before the next resolved address is tried while one is still
connecting (RFC 8305's recommended value, and asyncio's): a name with an
unreachable IPv6 address and a working IPv4 one connects almost as fast as
IPv4 alone."""


class Connection(asyncio.Protocol):
    """
    One HTTP/1.1 connection; see the module's docstring.

    Attributes:
        closed: The connection is closed, or closing.
        sent: The current request was handed to the socket.
        received: Bytes of a response to the current request arrived.
        idle_since: Loop time it was last handed back idle.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = ResponseParser(self._response_complete)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.sent = False
        self.received = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[ParsedResponse] | None = None
        self._last_read = 0.0
        self._read_timeout: float | None = None
        self._deadline: float | None = None
        self._attempt_timeout = 0.0
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
        if not self.sent:
            # Bytes before the request went out cannot be its answer (a
            # removal "confirmed" that was never sent): the connection is
            # dropped and nothing of the request was received.
            self._fail(httpx.RemoteProtocolError("the server answered before the request was sent"))
            return
        self.received = True
        if self._read_timeout is not None:
            self._last_read = self._loop.time()
        try:
            self._parser.feed(data)
        except httpx.RequestError as exc:  # not HTTP, over a cap, not decodable
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None:
            return
        if exc is None:
            try:
                if self._parser.finish_at_close() is not None:
                    return  # a body delimited by the close: complete now
            except httpx.RequestError as error:  # its coding cut short
                self._fail(error)
                return
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
        self,
        data: bytes,
        *,
        is_head: bool,
        read_timeout: float | None,
        max_body: int,
        deadline: float | None = None,
        attempt_timeout: float = 0.0,
    ) -> ParsedResponse:
        """
        Write *data* (a whole request) and wait for the whole response, its
        body (decoded) at most *max_body* bytes: `httpx.ReadTimeout` after
        *read_timeout* seconds without a byte, `AttemptTimeout` at the loop
        time *deadline* (the attempt's, of *attempt_timeout* seconds).
        """
        assert self.transport is not None
        loop = self._loop
        waiter: asyncio.Future[ParsedResponse] = loop.create_future()
        self._waiter = waiter
        self._parser.expect(is_head=is_head, max_body=max_body)
        self.sent = self.received = False
        # Handed to the socket at the loop's next pass rather than now: the
        # requests a fan-out makes in one pass (as answers arrive together)
        # then go out together instead of one between each answer's parsing,
        # which costs the client less CPU per request (docs/performance.md),
        # for at most one pass of the loop of latency.
        loop.call_soon(self._send, data)
        self._read_timeout = read_timeout
        self._deadline = deadline
        self._attempt_timeout = attempt_timeout
        if read_timeout is not None or deadline is not None:
            # One timer per connection, not per request: it is re-armed only
            # when this request must time out sooner than it would fire, and
            # otherwise checks, when it fires, whatever request is current.
            self._last_read = now = loop.time()
            fire = now + read_timeout if read_timeout is not None else math.inf
            if deadline is not None and deadline < fire:
                fire = deadline
            timer = self._timer
            if timer is None or timer.when() > fire:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(fire, self._check_timeouts)
        try:
            return await waiter
        except BaseException:
            # Failed, timed out or cancelled mid-exchange: the connection is
            # in an unknown state, so it is not reused.
            self.close()
            raise
        finally:
            self._waiter = None
            # A pending timer finds nothing to time.
            self._read_timeout = self._deadline = None

    def _send(self, data: bytes) -> None:
        if self._waiter is None:
            return  # the exchange ended meanwhile (cancelled, failed)
        transport = self.transport
        if transport is None or transport.is_closing():
            # Closed first (by the server, or for bytes that came unasked):
            # its connection_lost may have run already, with no exchange to
            # fail, so this one is failed here rather than left waiting.
            self._fail(
                httpx.RemoteProtocolError("the connection closed before the request was sent")
            )
            return
        transport.write(data)
        self.sent = True

    def _response_complete(self, response: ParsedResponse) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():  # not cancelled meanwhile
            waiter.set_result(response)

    def _check_timeouts(self) -> None:
        self._timer = None
        if self._waiter is None:
            return
        now = self._loop.time()
        deadline = self._deadline
        if deadline is not None and now >= deadline:
            self._fail(attempt_timed_out(self._attempt_timeout))
            return
        fire = math.inf if deadline is None else deadline
        read_timeout = self._read_timeout
        if read_timeout is not None:
            silent_until = self._last_read + read_timeout
            if now >= silent_until:
                self._fail(httpx.ReadTimeout(f"no data from the server for {read_timeout:g} s"))
                return
            fire = min(fire, silent_until)
        if fire != math.inf:
            self._timer = self._loop.call_at(fire, self._check_timeouts)

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

    def close_unlooped(self) -> None:
        """
        Close a connection whose event loop is closed. `abort` hands the
        socket's closing to the loop, which cannot run it any more, so the
        socket would stay open until garbage collection (a ResourceWarning):
        asyncio's transport is made to run, here, what the loop would have
        (its ``_call_connection_lost``, on the one under TLS when wrapped),
        which closes the socket. uvloop closed its sockets with its loop.
        """
        self.closed = True
        self._timer = None  # its loop is gone, and the timer with it
        transport = self.transport
        if transport is None:
            return
        # asyncio's TLS transport is a face over the transport of the socket.
        wrapped = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
        owner = transport if wrapped is None else wrapped
        lost = getattr(owner, "_call_connection_lost", None)
        with contextlib.suppress(RuntimeError):  # what the protocols ask of the closed loop
            if lost is not None and getattr(owner, "_sock", None) is not None:
                lost(None)
            else:
                transport.abort()


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
    A new connection to *host*:*port* (TLS with *tls*, checked against
    *host*). An IP address, or a name's one address, is connected to
    directly; a name's several addresses are raced (`connect_first`: happy
    eyeballs, as asyncio's, on every loop, which asyncio 3.11's own race is
    not: it drops its winner when cancelled), TLS on the winner. A name's addresses come from
    the loop's `Resolver`, asked once for the connections that open
    together. Cancelled at any point, it leaves no socket open.

    Raises `httpx.ConnectTimeout` after *connect_timeout*, `httpx.ConnectError`
    when no address accepts (refused, unreachable, DNS, TLS; the message names
    each address that failed), `CertificateVerifyFailed` for a refused
    certificate.
    """
    try:
        async with asyncio.timeout(connect_timeout):
            infos = await _addresses(loop, host, port)
            server_hostname = host if tls is not None else None
            if len(infos) == 1:
                # asyncio's own connect to one address closes its socket
                # when cancelled (and costs uvloop less than the race).
                _, connection = await loop.create_connection(
                    lambda: Connection(loop),
                    _numeric_host(infos[0]),
                    port,
                    ssl=tls,
                    server_hostname=server_hostname,
                )
            else:
                connection = await connect_first(
                    loop, infos, HAPPY_EYEBALLS_DELAY, _tcp_to(loop), Connection.close
                )
                if tls is not None:
                    # The race is over TCP connects, as asyncio's, so that a
                    # slow handshake does not start a second one; TLS on the
                    # winner. No await in between: cancelled from here on,
                    # start_tls closes the connection itself.
                    raw = connection.transport
                    assert raw is not None  # made connected
                    upgraded = await loop.start_tls(
                        raw, connection, tls, server_hostname=server_hostname
                    )
                    connection.transport = cast(asyncio.Transport, upgraded)
    except TimeoutError:
        raise httpx.ConnectTimeout(
            f"connecting to {host}:{port} took longer than {connect_timeout} s", request=request
        ) from None
    except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError)
        refused = tls_failure(exc, f"{host}:{port}")
        if refused is not None:
            refused.request = request
            raise refused from exc
        if not_tls(exc):
            raise WrongScheme(
                f"cannot connect to {host}:{port}: the server did not answer in TLS (a plain "
                f"http:// server, or another service on that port?): {exc}",
                request=request,
            ) from exc
        raise httpx.ConnectError(
            f"cannot connect to {host}:{port}: {exc}", request=request
        ) from exc
    return connection


async def _addresses(loop: asyncio.AbstractEventLoop, host: str, port: int) -> Sequence[AddrInfo]:
    """
    The addresses *host* resolves to for a TCP connection, in the order to
    try them, from the loop's `Resolver` (which asks once for the
    connections a fan-out opens at once); an IP address as it is, without
    asking.
    """
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    return await resolver_for(loop).resolve(loop, host, port)


def _tcp_to(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[AddrInfo], Awaitable[Connection]]:
    """An attempt of the race: a TCP connection to one address, by the
    loop's own connect (which closes its socket when it fails or is
    cancelled)."""

    async def attempt(info: AddrInfo) -> Connection:
        _, connection = await loop.create_connection(
            lambda: Connection(loop), _numeric_host(info), info[4][1]
        )
        return connection

    return attempt


def _numeric_host(info: AddrInfo) -> str:
    """The address of *info* as a host that needs no resolver: an IPv6
    link-local address keeps its scope (``fe80::1%2``)."""
    address = info[4]
    if len(address) == 4 and address[3]:
        return f"{address[0]}%{address[3]}"
    return str(address[0])
