"""
The transport requests go out through when the caller hands in none.

`default_transport` returns an `HTTP11Transport`: HTTP/1.1 keep-alive
connections on asyncio's own sockets (TLS included), responses parsed by
llhttp (the C parser of Node.js, through httptools), and a connection pool
that is a counter, a wait queue and a stack of idle connections per origin.
It exists because fan-outs are CPU-bound in the client long before the API
is the limit: under the same client, 1000 small GETs at 100 in flight take
about 6 s over httpcore's pool, 0.3 s over httpx-aiohttp's transport and
0.1 s over this one (docs/performance.md), the httpx objects above it
(`httpx.Request`, `httpx.Response`) included.

It does one thing, so that it can do it in a few hundred lines: send a
request with an in-memory body and return the whole response. What it does
not do, it hands over to httpx's own `httpx.AsyncHTTPTransport` (httpcore),
per origin and decided once: a proxy from the environment (``HTTPS_PROXY``,
``ALL_PROXY``, minus ``NO_PROXY``), an event loop that is not asyncio (trio),
or a URL scheme other than http and https. And while httpcore's connection
pool is patched, as ``respx.mock`` does, every request goes through httpcore,
so that tests written against httpx's usual mocking see the requests as they
would with httpx's default transport. Plain httpcore for everything is one
argument away: ``AsyncJourneyClient(transport=httpx.AsyncHTTPTransport())``.

Timeouts are httpx's, read from ``request.extensions["timeout"]``:
``pool`` bounds the wait for a free connection (`httpx.PoolTimeout`),
``connect`` the TCP and TLS handshakes (`httpx.ConnectTimeout`), ``read`` the
silence of the server once the request is written (`httpx.ReadTimeout`).
``write`` is not needed: a request is handed to the socket's buffer in one
write, and a server that does not read it does not answer either, which
``read`` bounds. Failures are httpx's exceptions, so callers map them as
they would httpcore's.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.request
from collections import deque
from typing import Final, TypeAlias

import httpcore
import httptools
import httpx

__all__ = ["HTTP11Transport", "default_transport", "send_and_read"]

DEFAULT_KEEPALIVE_EXPIRY: Final = 5.0
"""Seconds an idle connection is kept, as httpx does: shorter than the idle
timeout of common servers and gateways (nginx 75 s, AWS ALB 60 s), so we
close first and do not write into a connection the server is closing."""

_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_Origin: TypeAlias = tuple[str, bytes, int]
_Headers: TypeAlias = list[tuple[bytes, bytes]]


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """
    The default inner transport, its pool sized to *max_connections*.
    """
    return HTTP11Transport(max_connections=max_connections)


async def send_and_read(
    transport: httpx.AsyncBaseTransport, request: httpx.Request
) -> httpx.Response:
    """
    What `httpx.AsyncClient.send` does that we need, and no more: send
    *request* through *transport* and read the body, releasing the connection
    when reading fails.
    """
    response = await transport.handle_async_request(request)
    response.request = request
    try:
        await response.aread()
    except BaseException:
        await response.aclose()
        raise
    return response


class _Exchange:
    """The response being received on a connection."""

    __slots__ = (
        "body",
        "headers",
        "headers_complete",
        "http_version",
        "is_head",
        "reason",
        "status",
        "waiter",
    )

    def __init__(self, waiter: asyncio.Future[None], is_head: bool) -> None:
        self.waiter = waiter
        self.is_head = is_head
        self.reason = b""
        self.headers: _Headers = []
        self.body: list[bytes] = []
        self.headers_complete = False
        self.status = 0
        self.http_version = b"HTTP/1.1"


class _Connection(asyncio.Protocol):
    """
    One HTTP/1.1 connection: writes a request, parses the response into an
    `_Exchange`, and wakes the request's task once it is complete or failed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.received = False
        self.keep_alive = True
        self.idle_since = 0.0
        self._exchange: _Exchange | None = None
        self._last_read = 0.0
        self._read_timeout: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        exchange = self._exchange
        if exchange is None:
            # Bytes nobody asked for: this connection cannot be trusted again.
            self.close()
            return
        self.received = True
        if self._read_timeout is not None:
            self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols unasked"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self._exchange
        if exchange is None:
            return
        if exc is None and exchange.headers_complete and _delimited_by_close(exchange.headers):
            # No Content-Length and not chunked: the body ends where the connection does.
            self.keep_alive = False
            self._finish(exchange)
        elif exc is None:
            self._fail(
                httpx.RemoteProtocolError(
                    "server disconnected without sending a complete response"
                    if self.received
                    else "server disconnected without sending a response"
                )
            )
        else:
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__))

    # --- httptools callbacks ---

    # After a response is complete `_exchange` is None, so bytes that follow
    # it (a second response nobody asked for) only mark the connection spent.

    def on_status(self, status: bytes) -> None:
        if (exchange := self._exchange) is None:
            self.keep_alive = False
            return
        exchange.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if (exchange := self._exchange) is None:
            self.keep_alive = False
            return
        exchange.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if (exchange := self._exchange) is None:
            self.keep_alive = False
            return
        exchange.headers_complete = True
        if exchange.is_head and self._parser.get_status_code() >= 200:
            # llhttp would wait for the body a HEAD response announces but
            # never sends; finish here, and do not reuse a connection whose
            # parser is left mid-message.
            self.keep_alive = False
            self._finish(exchange)

    def on_body(self, body: bytes) -> None:
        if (exchange := self._exchange) is None:
            self.keep_alive = False
            return
        exchange.body.append(body)

    def on_message_complete(self) -> None:
        if (exchange := self._exchange) is None:
            self.keep_alive = False
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim response (100 Continue, 103 Early Hints): the real one follows.
            exchange.reason = b""
            exchange.headers = []
            exchange.body = []
            exchange.headers_complete = False
            return
        self.keep_alive = self._parser.should_keep_alive()
        self._finish(exchange)

    # --- the request side ---

    async def exchange(
        self, data: bytes, *, is_head: bool, read_timeout: float | None
    ) -> tuple[int, bytes, _Headers, bytes, bytes]:
        """
        Write *data* (a whole request) and wait for the whole response:
        ``(status, reason, headers, body, http_version)``.
        """
        assert self.transport is not None
        loop = self._loop
        exchange = self._exchange = _Exchange(loop.create_future(), is_head)
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
            await exchange.waiter
        except BaseException:
            # Failed, timed out or cancelled mid-exchange: the connection is
            # in an unknown state, so it is not reused.
            self.close()
            raise
        finally:
            self._exchange = None
            self._read_timeout = None  # a pending timer finds nothing to time
        return (
            exchange.status,
            exchange.reason,
            exchange.headers,
            b"".join(exchange.body),
            exchange.http_version,
        )

    def _check_read_timeout(self) -> None:
        self._timer = None
        read_timeout = self._read_timeout
        if read_timeout is None or self._exchange is None:
            return
        deadline = self._last_read + read_timeout
        if self._loop.time() >= deadline:
            self._fail(httpx.ReadTimeout(f"no data from the server for {read_timeout:g} s"))
        else:
            self._timer = self._loop.call_at(deadline, self._check_read_timeout)

    def _finish(self, exchange: _Exchange) -> None:
        self._exchange = None
        parser = self._parser
        exchange.status = parser.get_status_code()
        if parser.get_http_version() == "1.0":
            exchange.http_version = b"HTTP/1.0"
        if not exchange.waiter.done():  # not cancelled meanwhile
            exchange.waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        exchange = self._exchange
        self._exchange = None
        if exchange is not None and not exchange.waiter.done():
            exchange.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        self.keep_alive = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()


def _httpcore_patched() -> bool:
    send = httpcore.AsyncConnectionPool.handle_async_request
    return not getattr(send, "__module__", "").startswith("httpcore.")


def _delimited_by_close(headers: _Headers) -> bool:
    return not _chunked(headers) and all(name.lower() != b"content-length" for name, _ in headers)


class _Pool:
    """
    The connections of one event loop: slots that bound them, and idle ones
    per origin.

    A connection is open only while a request holding a slot uses it or it
    is idle, and an idle one is taken before a new one is opened: so open
    connections never outnumber the slots. The slots are a counter and a
    queue rather than an `asyncio.Semaphore`, whose every acquire scans its
    waiters; a released slot goes straight to the first live waiter.
    """

    __slots__ = ("free", "idle", "loop", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, max_connections: int) -> None:
        self.loop = loop
        self.free = max_connections
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.idle: dict[_Origin, deque[_Connection]] = {}

    def try_acquire(self) -> bool:
        if self.free and not self.waiters:
            self.free -= 1
            return True
        return False

    async def acquire(self, pool_timeout: float | None) -> None:
        """Wait for a slot, first come first served; TimeoutError after *pool_timeout*."""
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(pool_timeout):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                self.waiters.remove(waiter)
            raise

    def release(self) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1

    def discard(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                with contextlib.suppress(RuntimeError):  # its loop is closed
                    connection.close()
        self.idle.clear()


class HTTP11Transport(httpx.AsyncBaseTransport):
    """
    A lean HTTP/1.1 transport on asyncio: see the module's docstring for what
    it does and what it hands over to httpcore.

    Args:
        max_connections: Connections open at most, across origins; requests
            beyond it wait for one (up to the ``pool`` timeout).
        keepalive_expiry: Seconds an idle connection is kept for reuse.
        ssl_context: For https; by default `httpx.create_ssl_context`'s, which
            verifies certificates as httpx does.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._pool: _Pool | None = None
        # Per origin, the httpcore transport that serves it instead, or None.
        self._handovers: dict[_Origin, httpx.AsyncBaseTransport | None] = {}
        self._fallback: httpx.AsyncBaseTransport | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} max_connections={self._max_connections}>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        origin = (scheme, url.raw_host, url.port or _DEFAULT_PORTS.get(scheme, 0))
        try:
            handover = self._handovers[origin]
        except KeyError:
            handover = self._handovers[origin] = self._handover_for(url)
        if handover is not None:
            return await handover.handle_async_request(request)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio, or another non-asyncio loop
            return await self._handover_fallback().handle_async_request(request)
        if _httpcore_patched():
            return await self._handover_fallback().handle_async_request(request)

        pool = self._pool
        if pool is None or pool.loop is not loop:
            if pool is not None:
                pool.discard()
            pool = self._pool = _Pool(loop, self._max_connections)

        data = _serialize(request, await request.aread())
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        method = request.method
        is_head = method == "HEAD"
        read_timeout = timeouts.get("read")

        if not pool.try_acquire():
            try:
                await pool.acquire(timeouts.get("pool"))
            except TimeoutError:
                raise httpx.PoolTimeout(
                    f"no free connection within {timeouts.get('pool')} s", request=request
                ) from None
        try:
            connection = self._take_idle(pool, origin)
            reused = connection is not None
            while True:
                if connection is None:
                    connection = await self._connect(loop, origin, timeouts.get("connect"), request)
                try:
                    status, reason, headers, body, version = await connection.exchange(
                        data, is_head=is_head, read_timeout=read_timeout
                    )
                except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                    # A kept-alive connection the server closed as we wrote:
                    # nothing was answered, so an idempotent request is sent
                    # again, once, on a new connection.
                    if reused and not connection.received and method in _IDEMPOTENT:
                        connection, reused = None, False
                        continue
                    exc.request = request
                    raise
                except httpx.TransportError as exc:
                    exc.request = request
                    raise
                break
            if connection.keep_alive and not connection.closed and not self._closed:
                connection.idle_since = loop.time()
                pool.idle.setdefault(origin, deque()).append(connection)
            else:
                connection.close()
        finally:
            pool.release()
        response = httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(body),
            extensions={"http_version": version, "reason_phrase": reason},
        )
        for name, _ in headers:
            if len(name) == 16 and name.lower() == b"content-encoding":
                break
        else:
            # Already whole and nothing to decode: what aread() would store,
            # without its decoder machinery (a tenth of a request's cost).
            # Should httpx rename the attribute, aread() just does the work.
            response._content = body
        return response

    def _take_idle(self, pool: _Pool, origin: _Origin) -> _Connection | None:
        connections = pool.idle.get(origin)
        if not connections:
            return None
        expired_before = pool.loop.time() - self._keepalive_expiry
        while connections:
            # Newest first: the likeliest to be still open at the other end.
            connection = connections.pop()
            transport = connection.transport
            if (
                not connection.closed
                and connection.idle_since > expired_before
                and transport is not None
                and not transport.is_closing()  # an EOF seen, connection_lost not yet run
            ):
                return connection
            connection.close()
        return None

    async def _connect(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: _Origin,
        connect_timeout: float | None,
        request: httpx.Request,
    ) -> _Connection:
        scheme, raw_host, port = origin
        host = raw_host.decode("ascii")
        tls = None
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            tls = self._ssl_context
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
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

    def _handover_for(self, url: httpx.URL) -> httpx.AsyncBaseTransport | None:
        if url.scheme not in _DEFAULT_PORTS:
            return self._handover_fallback()
        proxies = urllib.request.getproxies()
        proxy = proxies.get(url.scheme) or proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(url.host):
            return None
        return self._httpcore(proxy)

    def _handover_fallback(self) -> httpx.AsyncBaseTransport:
        if self._fallback is None:
            self._fallback = self._httpcore()
        return self._fallback

    def _httpcore(self, proxy: str | None = None) -> httpx.AsyncBaseTransport:
        # Handed-over requests keep this transport's bound and TLS settings.
        return httpx.AsyncHTTPTransport(
            proxy=proxy,
            limits=httpx.Limits(max_connections=self._max_connections),
            verify=self._ssl_context or True,
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.discard()
        handovers = {id(t): t for t in self._handovers.values() if t is not None}
        if self._fallback is not None:
            handovers[id(self._fallback)] = self._fallback
        for transport in handovers.values():
            await transport.aclose()


def _serialize(request: httpx.Request, body: bytes) -> bytes:
    """The request as it goes on the wire, refusing anything that would let
    a header or the method smuggle in another request."""
    method = request.method
    if not (method.isascii() and method.isalpha()):
        raise httpx.LocalProtocolError(f"invalid HTTP method {method!r}", request=request)
    headers = request.headers.raw
    head = b"".join(
        [
            method.encode("ascii"),
            b" ",
            request.url.raw_path,
            b" HTTP/1.1\r\n",
            *[b"%s: %s\r\n" % header for header in headers],
            b"\r\n",
        ]
    )
    # One scan of the whole head instead of one per header: a CR, LF or NUL
    # inside a name or a value shows as a line too many.
    lines = len(headers) + 2
    if head.count(b"\n") != lines or head.count(b"\r") != lines or b"\0" in head:
        raise httpx.LocalProtocolError("invalid character in a header", request=request)
    if b"transfer-encoding" in head.lower() and _chunked(headers):
        # A streamed body, read whole above: sent as one chunk.
        return b"".join(
            [head, b"%x\r\n" % len(body), body, b"\r\n0\r\n\r\n"] if body else [head, b"0\r\n\r\n"]
        )
    return head + body if body else head


def _chunked(headers: _Headers) -> bool:
    return any(
        name.lower() == b"transfer-encoding" and value.lower().rstrip().endswith(b"chunked")
        for name, value in headers
    )
