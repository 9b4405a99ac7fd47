"""
`HTTP11Transport`: the `httpx.AsyncBaseTransport` requests go out through
when the caller hands in none, and the handovers to httpx's own transport.

It sends HTTP/1.1 requests over keep-alive connections (`_connection`) taken
from a bounded pool (`_pool`), and returns whole responses. It exists because
fan-outs are CPU-bound in the client long before the API is the limit
(docs/performance.md has the figures against httpcore and aiohttp).

It does one thing, so that it can do it in a few hundred lines: send a
request with an in-memory body and return the whole response. What it does
not do, it hands over to httpx's own `httpx.AsyncHTTPTransport` (httpcore),
per origin and decided once: a proxy from the environment (``HTTPS_PROXY``,
``ALL_PROXY``, minus ``NO_PROXY``), an event loop that is not asyncio (trio),
or a URL scheme other than http and https. While tracers wrap httpx's
transport (OpenTelemetry's httpx instrumentation: wrapt wrappers over httpx's
own method), requests are still sent here, through those wrappers, so that
the tracer makes its spans around the fast path (`_instrumentation`). While
anything else patches httpx's transport or httpcore's pool (pytest-httpx,
``respx.mock``), every request goes through httpx's transport, so that mocks
see the requests as they would with httpx's default transport. Plain
httpcore for everything is one argument away:
``AsyncJourneyClient(transport=httpx.AsyncHTTPTransport())``.

Timeouts are httpx's, read from ``request.extensions["timeout"]``:
``pool`` bounds the wait for a free connection (`httpx.PoolTimeout`),
``connect`` the TCP and TLS handshakes (`httpx.ConnectTimeout`), ``read`` the
silence of the server once the request is written (`httpx.ReadTimeout`).
``write`` is not needed: a request is handed to the socket's buffer in one
write, and a server that does not read it does not answer either, which
``read`` bounds. Failures are httpx's exceptions, so callers map them as
they would httpcore's.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ssl
import time
from typing import Final

import httpx

from ._body import max_body, send_and_read
from ._connection import Connection, connect
from ._instrumentation import send_through, wrappers
from ._pool import Origin, Pool, pool_for
from ._proxy import proxy_for, proxy_transport
from ._timeouts import ATTEMPT_TIMEOUT_EXTENSION, attempt_timed_out, run_within
from ._tls import build_ssl_context, tls_failure
from ._wire import (
    PREPARED_HEAD_EXTENSION,
    ParsedResponse,
    RequestBytes,
    request_line,
    serialize_request,
)

__all__ = ["DEFAULT_KEEPALIVE_EXPIRY", "HTTP11Transport", "default_transport"]

DEFAULT_KEEPALIVE_EXPIRY: Final = 5.0
"""Seconds an idle connection is kept, as httpx does: shorter than the idle
timeout of common servers and gateways (nginx 75 s, AWS ALB 60 s), so we
close first and do not write into a connection the server is closing."""

_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def default_transport(
    max_connections: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    proxy: httpx.URL | None = None,
    trust_env: bool = True,
) -> httpx.AsyncBaseTransport:
    """
    The default inner transport, its pool sized to *max_connections*.
    """
    return HTTP11Transport(
        max_connections=max_connections, ssl_context=ssl_context, proxy=proxy, trust_env=trust_env
    )


class HTTP11Transport(httpx.AsyncBaseTransport):
    """
    A lean HTTP/1.1 transport on asyncio: see the module's docstring for what
    it does and what it hands over to httpcore.

    Args:
        max_connections: Connections open at most, across origins; requests
            beyond it wait for one (up to the ``pool`` timeout).
        keepalive_expiry: Seconds an idle connection is kept for reuse.
        ssl_context: For https; by default `build_ssl_context`'s, which
            verifies certificates as httpx does (certifi's CAs, or
            ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when *trust_env*).
        proxy: Every request through this proxy (handed over to httpcore).
        trust_env: Without *proxy*, the environment's proxies are used
            (``HTTPS_PROXY``, ``ALL_PROXY``, minus ``NO_PROXY``), and its
            CA settings.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        ssl_context: ssl.SSLContext | None = None,
        proxy: httpx.URL | None = None,
        trust_env: bool = True,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._proxy = proxy
        self._trust_env = trust_env
        self._pool: Pool | None = None
        # Per origin, the httpcore transport that serves it instead, or None.
        self._handovers: dict[Origin, httpx.AsyncBaseTransport | None] = {}
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
        attempt_timeout: float | None = request.extensions.get(ATTEMPT_TIMEOUT_EXTENSION)
        if handover is not None:
            return await _whole(handover, request, attempt_timeout)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio, or another non-asyncio loop
            return await _whole(self._handover_fallback(), request, attempt_timeout)
        through = wrappers()
        if through is None:  # a mock, or a patch it cannot run: httpx's own path
            return await _whole(self._handover_fallback(), request, attempt_timeout)
        if through:  # tracers' wrappers: they run around the fast path
            send = functools.partial(
                self._send, loop=loop, origin=origin, attempt_timeout=attempt_timeout
            )
            return await send_through(through, self, send, request)
        # Nothing between the client and here: its prepared lines still hold.
        prepared = request.extensions.get(PREPARED_HEAD_EXTENSION)
        if prepared is not None and prepared[0] is request.headers:
            data = RequestBytes(request_line(request) + prepared[1])
            return await self._send(request, loop, origin, attempt_timeout, data)
        return await self._send(request, loop, origin, attempt_timeout)

    async def _send(
        self,
        request: httpx.Request,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        attempt_timeout: float | None,
        data: RequestBytes | None = None,
    ) -> httpx.Response:
        """The fast path: *request* (as *data* when serialized already) sent
        on a pooled connection of *loop*."""
        started = time.perf_counter()
        pool = self._pool
        if pool is None or pool.loop is not loop:
            pool = self._pool = pool_for(loop, pool, self._max_connections, self._keepalive_expiry)

        if data is None:
            data = serialize_request(request, await request.aread())
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        deadline = None if attempt_timeout is None else loop.time() + attempt_timeout
        if not pool.try_acquire():
            pool_timeout = timeouts.get("pool")
            wait, by_attempt = _sooner(pool_timeout, deadline, loop)
            try:
                await pool.acquire(wait)
            except TimeoutError:
                if by_attempt:
                    raise _attempt_timeout(attempt_timeout, request) from None
                raise httpx.PoolTimeout(
                    f"no free connection within {pool_timeout} s", request=request
                ) from None
        try:
            parsed = await self._exchange(
                loop, pool, origin, request, data, timeouts, deadline, attempt_timeout
            )
        finally:
            pool.release()
        return _response(parsed, request, started)

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: Pool,
        origin: Origin,
        request: httpx.Request,
        data: bytes,
        timeouts: dict[str, float | None],
        deadline: float | None,
        attempt_timeout: float | None,
    ) -> ParsedResponse:
        """Send *data* (*request* serialized) on a connection to *origin*,
        holding a slot of *pool*; hand the connection back idle when it may
        be reused. *deadline*: the loop time the attempt ends at, if bounded."""
        method = request.method
        is_head = method == "HEAD"
        read_timeout = timeouts.get("read")
        limit = max_body(request)
        connection = pool.take_idle(origin)
        reused = connection is not None
        while True:
            if connection is None:
                wait, by_attempt = _sooner(timeouts.get("connect"), deadline, loop)
                try:
                    connection = await self._connect(loop, origin, wait, request)
                except httpx.ConnectTimeout:
                    if by_attempt:
                        raise _attempt_timeout(attempt_timeout, request) from None
                    raise
            try:
                parsed = await connection.exchange(
                    data,
                    is_head=is_head,
                    read_timeout=read_timeout,
                    max_body=limit,
                    deadline=deadline,
                    attempt_timeout=attempt_timeout or 0.0,
                )
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # A kept-alive connection the server closed as we wrote:
                # nothing was answered, so an idempotent request is sent
                # again, once, on a new connection; any request is, when
                # none of it was written (closed before: a server that
                # closes after each answer without saying so).
                if (
                    reused
                    and not connection.received
                    and (method in _IDEMPOTENT or not connection.sent)
                ):
                    connection, reused = None, False
                    continue
                exc.request = request
                raise
            except httpx.RequestError as exc:
                exc.request = request
                raise
            break
        if connection.keep_alive and not self._closed:
            pool.put_idle(origin, connection)
        else:
            connection.close()
        return parsed

    async def _connect(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        connect_timeout: float | None,
        request: httpx.Request,
    ) -> Connection:
        scheme, raw_host, port = origin
        tls = None
        if scheme == "https":
            tls = self._tls()
        return await connect(
            loop,
            raw_host.decode("ascii"),
            port,
            tls=tls,
            connect_timeout=connect_timeout,
            request=request,
        )

    def _tls(self) -> ssl.SSLContext:
        # Built on first use: loading the CAs is most of a client's start-up.
        if self._ssl_context is None:
            self._ssl_context = build_ssl_context(trust_env=self._trust_env)
        return self._ssl_context

    def _handover_for(self, url: httpx.URL) -> httpx.AsyncBaseTransport | None:
        if url.scheme not in _DEFAULT_PORTS:
            return self._handover_fallback()
        proxy = proxy_for(url, self._proxy, trust_env=self._trust_env)
        if proxy is None:
            return None
        return self._httpcore(proxy)

    def _handover_fallback(self) -> httpx.AsyncBaseTransport:
        if self._fallback is None:
            self._fallback = self._httpcore()
        return self._fallback

    def _httpcore(self, proxy: httpx.URL | None = None) -> httpx.AsyncBaseTransport:
        # Handed-over requests keep this transport's bound and TLS settings.
        if proxy is not None:
            return proxy_transport(
                proxy,
                max_connections=self._max_connections,
                verify=self._tls(),
                trust_env=self._trust_env,
            )
        return httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=self._max_connections),
            verify=self._tls(),
            trust_env=self._trust_env,
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


async def _whole(
    transport: httpx.AsyncBaseTransport, request: httpx.Request, attempt_timeout: float | None
) -> httpx.Response:
    """A handed-over request's response, read whole within its cap and
    *attempt_timeout*, as the fast path returns them."""
    if attempt_timeout is None:
        return await _read_whole(transport, request)
    return await run_within(
        attempt_timeout,
        functools.partial(_read_whole, transport),
        request,
        functools.partial(attempt_timed_out, attempt_timeout),
    )


async def _read_whole(
    transport: httpx.AsyncBaseTransport, request: httpx.Request
) -> httpx.Response:
    try:
        return await send_and_read(transport, request)
    except httpx.ConnectError as exc:
        refused = tls_failure(exc, request.url.netloc.decode("ascii"))
        if refused is None:
            raise
        refused.request = request
        raise refused from exc


def _sooner(
    timeout: float | None, deadline: float | None, loop: asyncio.AbstractEventLoop
) -> tuple[float | None, bool]:
    """The wait *timeout* allows, lowered to what is left before *deadline*;
    and whether the deadline is what bounds it."""
    if deadline is None:
        return timeout, False
    left = max(deadline - loop.time(), 0.0)
    if timeout is None or left < timeout:
        return left, True
    return timeout, False


def _attempt_timeout(seconds: float | None, request: httpx.Request) -> httpx.TimeoutException:
    exc = attempt_timed_out(seconds or 0.0)
    exc.request = request
    return exc


def _response(parsed: ParsedResponse, request: httpx.Request, started: float) -> httpx.Response:
    """The httpx face of a response to *request* received whole (body
    decoded), sent at *started* (`time.perf_counter`)."""
    body = b"".join(parsed.body)
    response = httpx.Response(
        parsed.status,
        headers=parsed.headers,
        stream=httpx.ByteStream(body),
        request=request,
        extensions={"http_version": parsed.http_version, "reason_phrase": parsed.reason},
    )
    # Whole, decoded, closed and timed: what aread(), aclose() and
    # AsyncClient.send would leave, without their machinery
    # (benchmarks/hotpath.py measures both).
    response._content = body
    response.is_stream_consumed = True
    response.is_closed = True
    response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
    return response
